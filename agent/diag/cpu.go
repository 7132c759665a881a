package diag

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/shirou/gopsutil/v3/cpu"

	"github.com/deskside/deskside/agent/proctab"
)

const (
	// hogWindow is the longest sampling window of cpu.hogs.
	hogWindow = time.Second
	// minHogWindow is the shortest worth measuring.
	minHogWindow = 100 * time.Millisecond
	// maxHogsListed bounds the processes listed as evidence.
	maxHogsListed = 5
)

// procKey identifies a process across samples: pids are reused, pid plus
// start time is not.
type procKey struct {
	pid   int32
	start uint64 // platform start-time token
}

// procInfo is one process's counters.
type procInfo struct {
	pid, ppid int32
	name      string
	cpu       time.Duration // user + system CPU time since start
	rss       uint64
}

// logicalCPUs counts the logical CPUs.
func logicalCPUs(ctx context.Context) int {
	if n, err := cpu.CountsWithContext(ctx, true); err == nil && n > 0 {
		return n
	}
	return runtime.NumCPU()
}

func checkLoad(ctx context.Context, e *checkEnv) *result {
	l, err := loadAvg(ctx)
	if err != nil {
		return new(result).fromError("could not read the load average", err)
	}
	return evalLoad(l, logicalCPUs(ctx), e.cfg.loadWarn, e.cfg.loadFail)
}

// evalLoad decides cpu.load on the load per logical CPU: the 5-minute
// average against both thresholds, the 1-minute one (a spike) can only
// warn.
func evalLoad(l [3]float64, cpus int, warn, fail float64) *result {
	r := new(result)
	cpus = max(cpus, 1)
	per1, per5 := l[0]/float64(cpus), l[1]/float64(cpus)
	r.addf("load", "%.2f %.2f %.2f (1, 5, 15 min)", l[0], l[1], l[2])
	r.addf("cpus", "%d", cpus)
	r.addf("per cpu", "%.2f (1 min), %.2f (5 min); warn at %.4g, fail at %.4g", per1, per5, warn, fail)
	st := worse(level(per5, warn, fail), min(level(per1, warn, fail), statusWarn))
	hint := "The machine is overloaded: see cpu.hogs for the processes responsible; a load without CPU use points at slow disks or network storage."
	switch st {
	case statusFail:
		return r.fail(fmt.Sprintf("the machine is heavily overloaded: load %.2f per CPU over 5 minutes", per5), hint)
	case statusWarn:
		return r.warn(fmt.Sprintf("the machine is busy: load %.2f per CPU (1 min), %.2f (5 min)", per1, per5), hint)
	}
	return r.pass(fmt.Sprintf("load %.2f per CPU over 5 minutes", per5))
}

// hog is a process's CPU use over the sampling window.
type hog struct {
	procInfo
	percent float64 // of one core (proctab.CPUPercent)
}

func checkHogs(ctx context.Context, e *checkEnv) *result {
	ctx, cancel := e.early(ctx)
	defer cancel()
	window := hogWindow
	if dl, ok := ctx.Deadline(); ok {
		window = min(window, time.Until(dl)/3)
	}
	if window < minHogWindow {
		return unavailable("not enough of the budget left to sample processes")
	}
	a, err := readProcs(ctx)
	if err != nil {
		return new(result).fromError("could not read processes", err)
	}
	t0 := time.Now()
	t := time.NewTimer(window)
	select {
	case <-ctx.Done():
		t.Stop()
		return unavailable("ran out of time while sampling")
	case <-t.C:
	}
	b, err := readProcs(ctx)
	if err != nil {
		return new(result).fromError("could not read processes", err)
	}
	wall := time.Since(t0)
	var all []hog
	for k, pb := range b {
		pa, ok := a[k]
		if !ok || wall <= 0 {
			continue
		}
		if e.tools.has(k.pid) || e.tools.has(pb.ppid) {
			continue // the triage's own tools
		}
		pb.pid = k.pid
		all = append(all, hog{procInfo: pb, percent: proctab.CPUPercent(pa.cpu, pb.cpu, wall)})
	}
	return evalHogs(all, e.cfg.hogPercent, wall)
}

// evalHogs decides cpu.hogs: any process at or over threshold % of one
// core over the window warns.
func evalHogs(all []hog, threshold float64, window time.Duration) *result {
	r := new(result)
	slices.SortFunc(all, func(a, b hog) int { return cmp.Or(cmp.Compare(b.percent, a.percent), cmp.Compare(a.pid, b.pid)) })
	r.addf("window", "%s, %d processes", fmtDur(window), len(all))
	var hogs []string
	for i, h := range all {
		if h.percent >= threshold {
			hogs = append(hogs, fmt.Sprintf("%s (pid %d) %.0f%%", h.name, h.pid, h.percent))
		}
		if i < maxHogsListed || h.percent >= threshold {
			r.addf(fmt.Sprintf("pid %d", h.pid), "%s: %.1f%% of a core", h.name, h.percent)
		}
	}
	if len(hogs) > 0 {
		return r.warn(fmt.Sprintf("%s above %.0f%% of a core: %s", plural(len(hogs), "process", "processes"), threshold, listNames(hogs, 3)),
			"Ask the user whether it is expected (a build, a video call, an update). If the process is stuck, it can be ended (kill process) or its application restarted.")
	}
	busiest := "none"
	if len(all) > 0 {
		busiest = fmt.Sprintf("%s at %.0f%%", all[0].name, all[0].percent)
	}
	return r.pass(fmt.Sprintf("no process above %.0f%% of a core (busiest: %s)", threshold, busiest))
}
