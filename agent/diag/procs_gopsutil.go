//go:build !linux && !(darwin && !cgo)

package diag

import (
	"context"

	"github.com/shirou/gopsutil/v3/process"
)

// readProcs reads the process table through gopsutil (native APIs on
// Windows, libproc on macOS with cgo).
func readProcs(ctx context.Context) (map[procKey]procInfo, error) {
	procs, err := process.ProcessesWithContext(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[procKey]procInfo, len(procs))
	for i, p := range procs {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		created, err := p.CreateTimeWithContext(ctx)
		if err != nil || created < 0 {
			continue
		}
		info := procInfo{pid: p.Pid}
		if t, err := p.TimesWithContext(ctx); err == nil {
			info.cpu = t.User + t.System
		}
		if m, err := p.MemoryInfoWithContext(ctx); err == nil {
			info.rss = m.RSS
		}
		info.ppid, _ = p.PpidWithContext(ctx)
		info.name, _ = p.NameWithContext(ctx)
		out[procKey{pid: p.Pid, start: uint64(created)}] = info
	}
	return out, nil
}
