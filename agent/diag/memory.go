package diag

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/shirou/gopsutil/v3/mem"

	"github.com/deskside/deskside/proto/wire"
)

const (
	// psiFullWarn is the share of the last minute (full avg60, %) all
	// non-idle tasks stalled on memory above which memory.pressure warns.
	psiFullWarn = 10
	// topConsumers is how many of the largest processes are listed.
	topConsumers = 3
)

// memPSI is the memory pressure stall information (percent of time).
type memPSI struct {
	someAvg10, someAvg60 float64
	fullAvg10, fullAvg60 float64
}

// memState is what memory.pressure decides on.
type memState struct {
	total, available uint64
	psi              *memPSI // nil when not available
	psiErr           error
	top              []procInfo // largest first
	topErr           error
}

func (m memState) usedPercent() float64 { return percent(m.total-min(m.available, m.total), m.total) }

func checkMemory(ctx context.Context, e *checkEnv) *result {
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return unavailable("could not read memory: " + firstLine(err.Error()))
	}
	st := memState{total: vm.Total, available: vm.Available}
	if p, err := readMemoryPSI(); err == nil {
		st.psi = &p
	} else {
		st.psiErr = err
	}
	procs, err := readProcs(ctx)
	if err != nil {
		st.topErr = err
	} else {
		st.top = topByRSS(procs, topConsumers)
	}
	return evalMemory(st, e.cfg.memWarn, e.cfg.memFail)
}

// topByRSS returns the n processes with the largest resident memory.
func topByRSS(procs map[procKey]procInfo, n int) []procInfo {
	all := make([]procInfo, 0, len(procs))
	for k, p := range procs {
		p.pid = k.pid
		all = append(all, p)
	}
	slices.SortFunc(all, func(a, b procInfo) int { return cmp.Or(cmp.Compare(b.rss, a.rss), cmp.Compare(a.pid, b.pid)) })
	return all[:min(n, len(all))]
}

// evalMemory decides memory.pressure: used % against the thresholds, and
// a warning at least when tasks stall on memory (PSI).
func evalMemory(st memState, warn, fail float64) *result {
	r := new(result)
	if st.total == 0 {
		return r.unavailable("the system reports no memory size")
	}
	used := st.usedPercent()
	r.addf("used", "%s of %s (%s available)", fmtPct(used), wire.FormatBytes(st.total), wire.FormatBytes(st.available))
	switch {
	case st.psi != nil:
		r.addf("pressure", "some avg10 %.2f%% avg60 %.2f%%, full avg10 %.2f%% avg60 %.2f%%",
			st.psi.someAvg10, st.psi.someAvg60, st.psi.fullAvg10, st.psi.fullAvg60)
	case errors.Is(st.psiErr, ErrNotSupported):
	case st.psiErr != nil:
		r.add("pressure", "not available: "+firstLine(st.psiErr.Error()))
	}
	for i, p := range st.top {
		r.addf(fmt.Sprintf("top %d", i+1), "%s (pid %d): %s", p.name, p.pid, wire.FormatBytes(p.rss))
	}
	if st.topErr != nil && !errors.Is(st.topErr, ErrNotSupported) {
		r.add("top processes", "not read: "+firstLine(st.topErr.Error()))
	}
	hint := "Close unused applications or browser tabs"
	if len(st.top) > 0 {
		hint += fmt.Sprintf(" (the largest is %s)", st.top[0].name)
	}
	hint += "; if memory is always short, the machine needs more RAM."
	switch level(used, warn, fail) {
	case statusFail:
		return r.fail(fmt.Sprintf("memory almost exhausted: %s used", fmtPct(used)), hint)
	case statusWarn:
		return r.warn(fmt.Sprintf("memory is short: %s used", fmtPct(used)), hint)
	}
	if st.psi != nil && st.psi.fullAvg60 >= psiFullWarn {
		return r.warn(fmt.Sprintf("processes stall waiting for memory (%.1f%% of the last minute)", st.psi.fullAvg60), hint)
	}
	return r.pass(fmt.Sprintf("%s of memory used", fmtPct(used)))
}

func checkSwap(ctx context.Context, e *checkEnv) *result {
	sw, err := mem.SwapMemoryWithContext(ctx)
	if err != nil {
		return unavailable("could not read swap: " + firstLine(err.Error()))
	}
	return evalSwap(sw.Total, sw.Used, e.cfg.swapWarn)
}

// evalSwap decides memory.swap: used % against the warning threshold; no
// swap at all passes.
func evalSwap(total, used uint64, warn float64) *result {
	r := new(result)
	if total == 0 {
		r.add("swap", "none configured")
		return r.pass("no swap configured")
	}
	pct := percent(used, total)
	r.addf("used", "%s of %s", fmtPct(pct), wire.FormatBytes(total))
	if pct >= warn {
		return r.warn(fmt.Sprintf("swap %s used", fmtPct(pct)),
			"The machine has been short of memory: see memory.pressure for the largest processes; a reboot clears stale swap, more RAM fixes it.")
	}
	return r.pass(fmt.Sprintf("swap %s used", fmtPct(pct)))
}
