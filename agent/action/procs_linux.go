package action

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
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if p, err := readProc(pid); err == nil {
			procs = append(procs, p)
		}
	}
	return procs, nil
}

func readProc(pid int) (procInfo, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, err
	}
	p, ok := parseStat(b)
	if !ok {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return p, nil
}

// parseStat parses a /proc/pid/stat line; the name, in parentheses, may
// hold spaces and parentheses, so fields resume after the last ')'.
func parseStat(b []byte) (procInfo, bool) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return procInfo{}, false
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return procInfo{}, false
	}
	// state(3) ppid(4) … starttime(22)
	f := bytes.Fields(b[end+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return procInfo{}, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	start, err2 := strconv.ParseUint(string(f[19]), 10, 64)
	if errors.Join(err1, err2) != nil {
		return procInfo{}, false
	}
	st := f[0][0]
	return procInfo{pid: pid, ppid: ppid, start: start, zombie: st == 'Z' || st == 'X', name: string(b[open+1 : end])}, true
}

// procHandle holds a process through a pidfd, opened after the start
// time was checked, so a recycled pid is never signalled. Without pidfd
// support (Linux before 5.3) the start time is checked before each signal.
type procHandle struct {
	pid   int
	fd    int // pidfd, or -1
	start uint64
}

func openProc(p procInfo) (*procHandle, error) {
	fd, err := unix.PidfdOpen(p.pid, 0)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return &procHandle{pid: p.pid, fd: -1, start: p.start}, nil
		}
		return nil, err
	}
	if cur, err := readProc(p.pid); err != nil || cur.start != p.start {
		unix.Close(fd)
		return nil, os.ErrProcessDone
	}
	return &procHandle{pid: p.pid, fd: fd, start: p.start}, nil
}

func (h *procHandle) signal(s syscall.Signal) error {
	if h.fd >= 0 {
		return unix.PidfdSendSignal(h.fd, s, nil, 0)
	}
	if cur, err := readProc(h.pid); err != nil || cur.start != h.start {
		return syscall.ESRCH
	}
	return syscall.Kill(h.pid, s)
}

// exited reports whether the process has exited; a zombie has.
func (h *procHandle) exited() bool {
	if h.fd >= 0 {
		fds := []unix.PollFd{{Fd: int32(h.fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, 0)
			if err == unix.EINTR {
				continue
			}
			return err != nil || n > 0
		}
	}
	cur, err := readProc(h.pid)
	return err != nil || cur.start != h.start || cur.zombie
}

func (h *procHandle) release() {
	if h.fd >= 0 {
		unix.Close(h.fd)
		h.fd = -1
	}
}
