package health

import (
	"context"
	"errors"
	"fmt"

	"github.com/deskside/deskside/agent/proctab"
)

// procReader reads the process table through agent/proctab and resolves
// the owners of the processes reported, cached per process.
type procReader struct {
	owners map[procKey]string
}

func newProcReader() *procReader {
	return &procReader{owners: map[procKey]string{}}
}

func (r *procReader) read(ctx context.Context) (map[procKey]procSample, error) {
	procs, err := proctab.ListUsage(ctx)
	if errors.Is(err, proctab.ErrNotSupported) {
		return nil, fmt.Errorf("processes: %w", ErrNotSupported)
	}
	if err != nil {
		return nil, err
	}
	out := make(map[procKey]procSample, len(procs))
	for _, p := range procs {
		out[procKey{pid: int32(p.PID), start: p.Start}] = procSample{cpu: p.CPU, rss: p.RSS, name: p.Name}
	}
	return out, nil
}

// details returns the name and the owner of a reported process.
func (r *procReader) details(key procKey, p procSample) (name, user string) {
	if u, ok := r.owners[key]; ok {
		return p.name, u
	}
	u, err := proctab.Owner(int(key.pid))
	if err != nil {
		return p.name, "" // gone meanwhile, or not ours to read
	}
	r.owners[key] = u
	return p.name, u
}

// forget drops the owners of processes that are gone.
func (r *procReader) forget(live map[procKey]procSample) {
	for k := range r.owners {
		if _, ok := live[k]; !ok {
			delete(r.owners, k)
		}
	}
}
