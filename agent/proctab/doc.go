// Package proctab is the agent's one process-table reader. It serves the
// health sampler (busiest processes), diagnostics (CPU hogs, largest
// processes), the command runner (ending a command's process tree) and
// actions (ending a process and its descendants), and holds processes so
// that they can be signalled without ever hitting a recycled pid.
//
// [List] returns every process and [Read] one, each as a [Proc]: pid,
// parent pid, process group, start time, zombie state, name, and on
// Linux and Windows CPU time and resident memory. [ListUsage] returns the
// table with CPU time and resident memory on every platform that has
// them; [Owner] names the user a process runs as. [CPUPercent] turns two
// CPU times into percent of one core, the scale every per-process CPU
// figure of Deskside uses (as top shows it: two busy cores make 200).
//
// On Linux everything comes from /proc/PID/stat (one read per process, no
// process spawned); on macOS from sysctl kern.proc, with CPU and memory
// through libproc (cgo builds only); on Windows from a Toolhelp snapshot
// and GetProcessTimes. A pid together with its start time names one
// process: a pid the kernel hands out again comes with a later start
// time.
//
// [Open] holds a process read earlier. On Linux the handle is a pidfd,
// opened and then checked against the start time read before, so the
// process it holds cannot be replaced by another; without pidfd support
// (Linux before 5.3), and on macOS, the start time is checked again
// before each signal instead. [Handle.Exited] counts a zombie as gone:
// reaping it is its parent's business.
//
// What a platform cannot do returns an error wrapping [ErrNotSupported]:
// everything on platforms other than Linux, macOS and Windows, [Open] on
// Windows, [ListUsage] on macOS builds without cgo.
package proctab
