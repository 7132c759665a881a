package proctab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// statSize is the read buffer of /proc/PID/stat, whose fields up to the
// resident set size fit in it.
const statSize = 1024

// List reads the process table from /proc/*/stat, CPU time and resident
// memory included. Processes that exit while it reads are left out.
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
	path := make([]byte, 0, 32)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		path = append(append(append(path[:0], "/proc/"...), name...), "/stat"...)
		// unix.Open copies the path: no need for a string of its own.
		if p, err := readStat(unsafe.String(unsafe.SliceData(path), len(path)), buf); err == nil {
			procs = append(procs, p)
		}
	}
	return procs, nil
}

// ListUsage is List, checking ctx first: on Linux the table always
// carries CPU time and resident memory.
func ListUsage(ctx context.Context) ([]Proc, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return List()
}

// Read reads process pid from /proc/PID/stat.
func Read(pid int) (Proc, error) {
	return readStat("/proc/"+strconv.Itoa(pid)+"/stat", make([]byte, statSize))
}

// readStat reads a /proc/PID/stat file; buf is scratch space. It uses raw
// system calls: List calls it for every process, and an os.File each
// time would be garbage for nothing.
func readStat(path string, buf []byte) (Proc, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Proc{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var n int
	for {
		n, err = unix.Read(fd, buf)
		if err != unix.EINTR {
			break
		}
	}
	unix.Close(fd)
	if err != nil {
		return Proc{}, &os.PathError{Op: "read", Path: path, Err: err}
	}
	p, ok := parseStat(buf[:n])
	if !ok {
		return Proc{}, fmt.Errorf("%s: unexpected format", path)
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
	pid, ok := atou(bytes.TrimSpace(b[:open]))
	if !ok {
		return Proc{}, false
	}
	// state(3) ppid(4) pgrp(5) session tty_nr tpgid flags minflt cminflt
	// majflt cmajflt utime(14) stime(15) cutime cstime priority nice
	// num_threads itrealvalue starttime(22) vsize rss(24); f[0] is field 3.
	// A fixed array and no strconv: List parses every process's line.
	var f [22][]byte
	n := 0
	for rest := b[end+1:]; n < len(f); n++ {
		rest = bytes.TrimLeft(rest, " \n")
		if len(rest) == 0 {
			break
		}
		i := bytes.IndexAny(rest, " \n")
		if i < 0 {
			i = len(rest)
		}
		f[n], rest = rest[:i], rest[i:]
	}
	if n < 20 || len(f[0]) != 1 {
		return Proc{}, false
	}
	ppid, ok1 := atou(f[1])
	pgid, ok2 := atou(f[2])
	start, ok3 := atou(f[19])
	if !ok1 || !ok2 || !ok3 {
		return Proc{}, false
	}
	num := func(i int) uint64 {
		v, _ := atou(f[i]) // rss can be transiently odd; missing is 0
		return v
	}
	st := f[0][0]
	ticks := num(11) + num(12) // utime(14) + stime(15)
	return Proc{
		PID:    int(pid),
		PPID:   int(ppid),
		PGID:   int(pgid),
		Start:  start,
		Zombie: st == 'Z' || st == 'X',
		Name:   string(b[open+1 : end]),
		CPU:    time.Duration(float64(ticks) / clockTicks() * float64(time.Second)),
		RSS:    num(21) * pageSize, // rss(24), in pages
	}, true
}

// atou parses a non-empty unsigned decimal that fits in 63 bits.
func atou(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

var pageSize = uint64(os.Getpagesize())

// maxUserCache bounds the uid → name cache of Owner (it is reset when full).
const maxUserCache = 4096

var users struct {
	sync.Mutex
	names map[uint32]string
}

// Owner returns the user name of process pid's owner (its effective uid,
// the owner of /proc/PID), or the uid in decimal when it has no name.
func Owner(pid int) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(pid), &st); err != nil {
		return "", fmt.Errorf("owner of process %d: %w", pid, err)
	}
	return userName(st.Uid), nil
}

// userName resolves uid, caching the answer.
func userName(uid uint32) string {
	users.Lock()
	defer users.Unlock()
	if n, ok := users.names[uid]; ok {
		return n
	}
	if users.names == nil || len(users.names) >= maxUserCache {
		users.names = make(map[uint32]string)
	}
	name := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(name); err == nil && u.Username != "" {
		name = u.Username
	}
	users.names[uid] = name
	return name
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
