package health

import (
	"bytes"
	"context"
	"errors"
	"github.com/deskside/deskside/agent/proctab"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// procReader reads the process table from /proc: one open/read/close of
// /proc/<pid>/stat per process into a reused buffer, no per-process
// allocation beyond the map entry.
type procReader struct {
	buf      []byte
	pageSize uint64
	users    map[uint32]string // uid -> name
}

// maxUserCache bounds the uid -> name cache (it is reset when full).
const maxUserCache = 4096

func newProcReader() *procReader {
	return &procReader{buf: make([]byte, 4096), pageSize: uint64(os.Getpagesize()), users: map[uint32]string{}}
}

func (r *procReader) read(ctx context.Context) (map[procKey]procSample, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	tck := proctab.ClockTicks()
	out := make(map[procKey]procSample, len(names))
	path := make([]byte, 0, 32)
	for i, name := range names {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		pid, err := strconv.ParseInt(name, 10, 32)
		if err != nil || pid <= 0 {
			continue // not a process directory
		}
		path = append(append(append(path[:0], "/proc/"...), name...), "/stat"...)
		n, ok := r.readFile(path)
		if !ok {
			continue // gone, or not ours to read
		}
		st, ok := parseProcStat(r.buf[:n])
		if !ok {
			continue
		}
		out[procKey{pid: int32(pid), start: st.start}] = procSample{
			cpu:  float64(st.utime+st.stime) / tck,
			rss:  st.rssPages * r.pageSize,
			name: st.comm,
		}
	}
	return out, nil
}

// readFile reads a small file into r.buf, growing it if needed.
func (r *procReader) readFile(path []byte) (int, bool) {
	fd, err := unix.Open(unsafe.String(unsafe.SliceData(path), len(path)), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	n := 0
	for {
		m, err := unix.Read(fd, r.buf[n:])
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return 0, false
		}
		if m == 0 {
			return n, true
		}
		n += m
		if n == len(r.buf) {
			if len(r.buf) >= 64<<10 {
				return n, true
			}
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
	}
}

type procStat struct {
	comm                string
	utime, stime, start uint64
	rssPages            uint64
}

// parseProcStat parses /proc/<pid>/stat: "pid (comm) state ppid ...".
// comm may itself contain spaces and parentheses, so fields are counted
// from the last ')'.
func parseProcStat(b []byte) (procStat, bool) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open || end+2 > len(b) {
		return procStat{}, false
	}
	var st procStat
	st.comm = string(b[open+1 : end])
	// Fields after ") " numbered from 3 (state) as in proc(5).
	field := 3
	rest := b[end+2:]
	for len(rest) > 0 && field <= 24 {
		sp := bytes.IndexByte(rest, ' ')
		tok := rest
		if sp >= 0 {
			tok, rest = rest[:sp], rest[sp+1:]
		} else {
			rest = nil
		}
		switch field {
		case 14:
			st.utime = atou(tok)
		case 15:
			st.stime = atou(tok)
		case 22:
			st.start = atou(tok)
		case 24:
			st.rssPages = atou(tok)
			return st, true
		}
		field++
	}
	return procStat{}, false
}

// atou parses a non-negative decimal; anything else (rss can be
// transiently odd) is 0.
func atou(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

// details returns the name (comm, from the sample) and the owner of a
// process: the owner of /proc/<pid>, i.e. its effective uid.
func (r *procReader) details(_ context.Context, key procKey, p procSample) (name, user string) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(int(key.pid)), &st); err != nil {
		return p.name, ""
	}
	return p.name, r.userName(st.Uid)
}

func (r *procReader) userName(uid uint32) string {
	if n, ok := r.users[uid]; ok {
		return n
	}
	if len(r.users) >= maxUserCache {
		clear(r.users)
	}
	name := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(name); err == nil && u.Username != "" {
		name = u.Username
	}
	r.users[uid] = name
	return name
}

// forget drops per-process caches; user names are per uid and kept.
func (r *procReader) forget(map[procKey]procSample) {}
