package command

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/deskside/deskside/agent/proctab"
)

// pipeIdentity names f as /proc/*/fd links to it read.
func pipeIdentity(f *os.File) (string, bool) {
	// Not f.Fd(): that would put the pipe in blocking mode and disable
	// its read deadlines.
	rc, err := f.SyscallConn()
	if err != nil {
		return "", false
	}
	var st unix.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil || serr != nil {
		return "", false
	}
	return "pipe:[" + strconv.FormatUint(st.Ino, 10) + "]", true
}

// pipeHolders returns the processes in procs with one of pipes open.
func pipeHolders(procs map[int]proctab.Proc, pipes []string) []int {
	if len(pipes) == 0 {
		return nil
	}
	var holders []int
	for pid := range procs {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
		d, err := os.Open(dir)
		if err != nil {
			continue
		}
		fds, _ := d.Readdirnames(-1)
		d.Close()
	fds:
		for _, fd := range fds {
			link, err := os.Readlink(dir + fd)
			if err != nil {
				continue
			}
			for _, p := range pipes {
				if link == p {
					holders = append(holders, pid)
					break fds
				}
			}
		}
	}
	return holders
}
