//go:build darwin && cgo

package proctab

import (
	"context"
	"time"

	"github.com/shirou/gopsutil/v3/process"
)

// ListUsage is List with each process's CPU time and resident memory,
// read through libproc (gopsutil, cgo). Processes whose counters cannot be
// read (another user's, without privileges) keep them zero.
func ListUsage(ctx context.Context) ([]Proc, error) {
	procs, err := List()
	if err != nil {
		return nil, err
	}
	for i := range procs {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p := &process.Process{Pid: int32(procs[i].PID)}
		if t, err := p.TimesWithContext(ctx); err == nil {
			procs[i].CPU = time.Duration((t.User + t.System) * float64(time.Second))
		}
		if m, err := p.MemoryInfoWithContext(ctx); err == nil {
			procs[i].RSS = m.RSS
		}
	}
	return procs, nil
}
