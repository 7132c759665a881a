package diag

import (
	"context"
	"errors"
	"fmt"

	"github.com/deskside/deskside/agent/proctab"
)

// readProcs reads the process table with CPU time and resident memory
// (agent/proctab).
func readProcs(ctx context.Context) (map[procKey]procInfo, error) {
	procs, err := proctab.ListUsage(ctx)
	if errors.Is(err, proctab.ErrNotSupported) {
		return nil, fmt.Errorf("processes: %w", ErrNotSupported)
	}
	if err != nil {
		return nil, err
	}
	out := make(map[procKey]procInfo, len(procs))
	for _, p := range procs {
		if p.PID <= 0 {
			continue
		}
		out[procKey{pid: int32(p.PID), start: p.Start}] = procInfo{
			pid:  int32(p.PID),
			ppid: int32(p.PPID),
			name: p.Name,
			cpu:  p.CPU,
			rss:  p.RSS,
		}
	}
	return out, nil
}
