package diag

import (
	"context"
	"os"

	"github.com/deskside/deskside/agent/proctab"
)

// readProcs reads the process table (agent/proctab).
func readProcs(ctx context.Context) (map[procKey]procInfo, error) {
	procs, err := proctab.List()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tck := proctab.ClockTicks()
	page := uint64(os.Getpagesize())
	out := make(map[procKey]procInfo, len(procs))
	for _, p := range procs {
		if p.PID <= 0 {
			continue
		}
		out[procKey{pid: int32(p.PID), start: p.Start}] = procInfo{
			pid:  int32(p.PID),
			ppid: int32(p.PPID),
			name: p.Name,
			cpu:  float64(p.CPUTicks) / tck,
			rss:  p.RSSPages * page,
		}
	}
	return out, nil
}
