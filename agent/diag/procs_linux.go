package diag

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"strconv"
	"sync"
	"unsafe"
)

// readProcs reads the process table from /proc/<pid>/stat.
func readProcs(ctx context.Context) (map[procKey]procInfo, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	tck := clockTicks()
	page := uint64(os.Getpagesize())
	out := make(map[procKey]procInfo, len(names))
	for i, name := range names {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		pid, err := strconv.ParseInt(name, 10, 32)
		if err != nil || pid <= 0 {
			continue
		}
		b, err := readCappedFile("/proc/"+name+"/stat", 4096)
		if err != nil {
			continue // gone, or not ours to read
		}
		st, ok := parseProcStat(b)
		if !ok {
			continue
		}
		out[procKey{pid: int32(pid), start: st.start}] = procInfo{
			pid:  int32(pid),
			ppid: st.ppid,
			name: st.comm,
			cpu:  float64(st.utime+st.stime) / tck,
			rss:  st.rssPages * page,
		}
	}
	return out, nil
}

type procStat struct {
	comm                string
	ppid                int32
	utime, stime, start uint64
	rssPages            uint64
}

// parseProcStat parses /proc/<pid>/stat: "pid (comm) state ppid ...".
// comm may contain spaces and parentheses: fields are counted from the
// last ')'.
func parseProcStat(b []byte) (procStat, bool) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open || end+2 > len(b) {
		return procStat{}, false
	}
	st := procStat{comm: string(b[open+1 : end])}
	f := bytes.Fields(b[end+1:]) // f[0] is field 3 (state) of proc(5)
	if len(f) < 22 {
		return procStat{}, false
	}
	field := func(n int) uint64 { v, _ := strconv.ParseUint(string(f[n-3]), 10, 64); return v }
	ppid, _ := strconv.ParseInt(string(f[4-3]), 10, 32)
	st.ppid = int32(ppid)
	st.utime, st.stime = field(14), field(15)
	st.start = field(22)
	st.rssPages = field(24)
	return st, true
}

var (
	clkTckOnce sync.Once
	clkTck     = 100.0
)

// clockTicks returns USER_HZ, the unit of /proc/<pid>/stat times, from the
// AT_CLKTCK entry of the auxiliary vector (100 everywhere in practice,
// which is also the fallback).
func clockTicks() float64 {
	clkTckOnce.Do(func() {
		b, err := os.ReadFile("/proc/self/auxv")
		if err != nil {
			return
		}
		const atClkTck = 17
		w := int(unsafe.Sizeof(uintptr(0)))
		for i := 0; i+2*w <= len(b); i += 2 * w {
			var k, v uint64
			if w == 8 {
				k, v = binary.NativeEndian.Uint64(b[i:]), binary.NativeEndian.Uint64(b[i+w:])
			} else {
				k, v = uint64(binary.NativeEndian.Uint32(b[i:])), uint64(binary.NativeEndian.Uint32(b[i+w:]))
			}
			if k == atClkTck && v > 0 {
				clkTck = float64(v)
				return
			}
		}
	})
	return clkTck
}
