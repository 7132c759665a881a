package command

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// listProcs reads the process table from /proc/*/stat.
func listProcs() ([]procInfo, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	procs := make([]procInfo, 0, len(names))
	buf := make([]byte, 1024)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if p, err := readProc(pid, buf); err == nil {
			procs = append(procs, p)
		}
	}
	return procs, nil
}

// readProc reads /proc/pid/stat; buf is scratch space.
func readProc(pid int, buf []byte) (procInfo, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, err
	}
	n, err := f.Read(buf)
	f.Close()
	if err != nil {
		return procInfo{}, err
	}
	p, ok := parseStat(buf[:n])
	if !ok {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return p, nil
}

// parseStat parses a /proc/pid/stat line. The command name, in
// parentheses, may hold spaces and parentheses; fields resume after the
// last ')'.
func parseStat(b []byte) (procInfo, bool) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return procInfo{}, false
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return procInfo{}, false
	}
	// state(3) ppid(4) pgrp(5) session tty_nr tpgid flags minflt cminflt
	// majflt cmajflt utime stime cutime cstime priority nice num_threads
	// itrealvalue starttime(22)
	f := bytes.Fields(b[end+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return procInfo{}, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgid, err2 := strconv.Atoi(string(f[2]))
	start, err3 := strconv.ParseUint(string(f[19]), 10, 64)
	if errors.Join(err1, err2, err3) != nil {
		return procInfo{}, false
	}
	st := f[0][0]
	return procInfo{pid: pid, ppid: ppid, pgid: pgid, start: start, zombie: st == 'Z' || st == 'X'}, true
}

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
func pipeHolders(procs map[int]procInfo, pipes []string) []int {
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

// victim is a process outside the group, held through a pidfd so that a
// recycled pid is never signalled. Without pidfd support (Linux before
// 5.3) the start time is checked before each signal instead.
type victim struct {
	pid   int
	fd    int // pidfd, or -1
	start uint64
}

// openVictim opens p, checking that the pid still names the same process.
func openVictim(p procInfo) (*victim, error) {
	fd, err := unix.PidfdOpen(p.pid, 0)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return &victim{pid: p.pid, fd: -1, start: p.start}, nil
		}
		return nil, err
	}
	if cur, err := readProc(p.pid, make([]byte, 1024)); err != nil || cur.start != p.start {
		unix.Close(fd)
		return nil, os.ErrProcessDone
	}
	return &victim{pid: p.pid, fd: fd, start: p.start}, nil
}

func (v *victim) signal(s syscall.Signal) {
	if v.fd >= 0 {
		_ = unix.PidfdSendSignal(v.fd, s, nil, 0)
		return
	}
	if cur, err := readProc(v.pid, make([]byte, 1024)); err == nil && cur.start == v.start {
		_ = syscall.Kill(v.pid, s)
	}
}

// exited reports whether the process has exited (a zombie has).
func (v *victim) exited() bool {
	if v.fd >= 0 {
		fds := []unix.PollFd{{Fd: int32(v.fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, 0)
			if err == unix.EINTR {
				continue
			}
			return err != nil || n > 0
		}
	}
	cur, err := readProc(v.pid, make([]byte, 1024))
	return err != nil || cur.start != v.start || cur.zombie
}

func (v *victim) release() {
	if v.fd >= 0 {
		unix.Close(v.fd)
		v.fd = -1
	}
}
