//go:build !linux && !(darwin && !cgo)

package health

import (
	"context"

	"github.com/shirou/gopsutil/v3/process"
)

// procReader reads the process table through gopsutil (native APIs on
// Windows, libproc on macOS with cgo). Names and users cost a call each, so
// they are resolved only for reported processes and cached per process.
type procReader struct {
	cache map[procKey][2]string
}

func newProcReader() *procReader {
	return &procReader{cache: map[procKey][2]string{}}
}

func (r *procReader) read(ctx context.Context) (map[procKey]procSample, error) {
	procs, err := process.ProcessesWithContext(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[procKey]procSample, len(procs))
	for i, p := range procs {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		created, err := p.CreateTimeWithContext(ctx)
		if err != nil || created < 0 {
			continue
		}
		var s procSample
		if t, err := p.TimesWithContext(ctx); err == nil {
			s.cpu = t.User + t.System
		}
		if m, err := p.MemoryInfoWithContext(ctx); err == nil {
			s.rss = m.RSS
		}
		out[procKey{pid: p.Pid, start: uint64(created)}] = s
	}
	return out, nil
}

func (r *procReader) details(ctx context.Context, key procKey, s procSample) (name, user string) {
	if d, ok := r.cache[key]; ok {
		return d[0], d[1]
	}
	p, err := process.NewProcessWithContext(ctx, key.pid)
	if err != nil {
		return s.name, ""
	}
	name = s.name
	if name == "" {
		name, _ = p.NameWithContext(ctx)
	}
	user, _ = p.UsernameWithContext(ctx)
	r.cache[key] = [2]string{name, user}
	return name, user
}

// forget drops cached details of processes that are gone.
func (r *procReader) forget(live map[procKey]procSample) {
	for k := range r.cache {
		if _, ok := live[k]; !ok {
			delete(r.cache, k)
		}
	}
}
