package proctab

import "time"

// Proc is one process of the process table.
type Proc struct {
	// PID, PPID and PGID are the process's id, its parent's and its
	// process group's (PGID is 0 on Windows, which has none).
	PID, PPID, PGID int
	// Start identifies the process together with PID: its start time in
	// platform units (clock ticks since boot on Linux, microseconds since
	// the epoch on macOS, milliseconds since the epoch on Windows).
	Start uint64
	// Zombie is set for a process that has exited and waits for its
	// parent to reap it.
	Zombie bool
	// Name is the short command name the kernel keeps (comm; the image
	// name on Windows), not the command line.
	Name string
	// CPU is the user plus system CPU time the process has used since it
	// started, summed over its threads, and RSS its resident memory in
	// bytes. List fills them on Linux and Windows, ListUsage everywhere it
	// succeeds.
	CPU time.Duration
	RSS uint64
}

// CPUPercent is the CPU a process used between two readings of it, wall
// apart, as a percent of one core: the scale top and ps use, on which a
// process keeping two cores busy shows 200. It is 0 when wall is not
// positive or the counter went backwards.
func CPUPercent(before, after, wall time.Duration) float64 {
	if wall <= 0 || after < before {
		return 0
	}
	return 100 * float64(after-before) / float64(wall)
}
