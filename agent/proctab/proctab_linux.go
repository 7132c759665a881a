package proctab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// statSize is the read buffer of /proc/PID/stat, whose fields up to the
// start time fit in it.
const statSize = 1024

// List reads the process table from /proc/*/stat. Processes that exit
// while it reads are left out.
func List() ([]Proc, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	procs := make([]Proc, 0, len(names))
	buf := make([]byte, statSize)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if p, err := readStat(pid, buf); err == nil {
			procs = append(procs, p)
		}
	}
	return procs, nil
}

// Read reads process pid from /proc/PID/stat.
func Read(pid int) (Proc, error) {
	return readStat(pid, make([]byte, statSize))
}

// readStat reads /proc/pid/stat; buf is scratch space.
func readStat(pid int, buf []byte) (Proc, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Proc{}, err
	}
	n, err := f.Read(buf)
	f.Close()
	if err != nil {
		return Proc{}, err
	}
	p, ok := parseStat(buf[:n])
	if !ok {
		return Proc{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return p, nil
}

// parseStat parses a /proc/pid/stat line. The command name, in
// parentheses, may hold spaces and parentheses; fields resume after the
// last ')'.
func parseStat(b []byte) (Proc, bool) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return Proc{}, false
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return Proc{}, false
	}
	// state(3) ppid(4) pgrp(5) session tty_nr tpgid flags minflt cminflt
	// majflt cmajflt utime stime cutime cstime priority nice num_threads
	// itrealvalue starttime(22)
	f := bytes.Fields(b[end+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return Proc{}, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgid, err2 := strconv.Atoi(string(f[2]))
	start, err3 := strconv.ParseUint(string(f[19]), 10, 64)
	if errors.Join(err1, err2, err3) != nil {
		return Proc{}, false
	}
	num := func(i int) uint64 {
		if i >= len(f) {
			return 0
		}
		v, _ := strconv.ParseUint(string(f[i]), 10, 64)
		return v
	}
	st := f[0][0]
	return Proc{
		PID:      pid,
		PPID:     ppid,
		PGID:     pgid,
		Start:    start,
		Zombie:   st == 'Z' || st == 'X',
		Name:     string(b[open+1 : end]),
		CPUTicks: num(11) + num(12), // utime(14) + stime(15)
		RSSPages: num(21),           // rss(24)
	}, true
}

// Handle holds a process through a pidfd, opened after the start time
// was checked, so a recycled pid is never signalled. Without pidfd
// support (Linux before 5.3) the start time is checked before each
// signal instead. A Handle is not safe for concurrent use.
type Handle struct {
	pid   int
	fd    int // pidfd, or -1
	start uint64
}

// Open holds p, checking that its pid still names the same process. It
// fails when p is gone: with os.ErrProcessDone when its pid names another
// process by now.
func Open(p Proc) (*Handle, error) {
	fd, err := unix.PidfdOpen(p.PID, 0)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return &Handle{pid: p.PID, fd: -1, start: p.Start}, nil
		}
		return nil, err
	}
	if cur, err := Read(p.PID); err != nil || cur.Start != p.Start {
		unix.Close(fd)
		return nil, os.ErrProcessDone
	}
	return &Handle{pid: p.PID, fd: fd, start: p.Start}, nil
}

// Start is the start time of the process held.
func (h *Handle) Start() uint64 { return h.start }

// Signal sends s to the process; syscall.ESRCH means it is gone.
func (h *Handle) Signal(s syscall.Signal) error {
	if h.fd >= 0 {
		return unix.PidfdSendSignal(h.fd, s, nil, 0)
	}
	if cur, err := Read(h.pid); err != nil || cur.Start != h.start {
		return syscall.ESRCH
	}
	return syscall.Kill(h.pid, s)
}

// Exited reports whether the process has exited; a zombie has.
func (h *Handle) Exited() bool {
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
	cur, err := Read(h.pid)
	return err != nil || cur.Start != h.start || cur.Zombie
}

// Release closes the pidfd. It may be called more than once.
func (h *Handle) Release() {
	if h.fd >= 0 {
		unix.Close(h.fd)
		h.fd = -1
	}
}
