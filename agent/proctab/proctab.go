package proctab

// Proc is one process of the process table.
type Proc struct {
	// PID, PPID and PGID are the process's id, its parent's and its
	// process group's.
	PID, PPID, PGID int
	// Start identifies the process together with PID: its start time in
	// platform units (clock ticks since boot on Linux, microseconds since
	// the epoch on macOS).
	Start uint64
	// Zombie is set for a process that has exited and waits for its
	// parent to reap it.
	Zombie bool
	// Name is the short command name the kernel keeps (comm), not the
	// command line.
	Name string
	// CPUTicks is user plus system CPU time in clock ticks (ClockTicks a
	// second) and RSSPages the resident set in pages; Linux only.
	CPUTicks uint64
	RSSPages uint64
}
