// Package proctab reads the process table and holds processes so that
// they can be signalled without ever hitting a recycled pid. It serves
// the agent's command runner (ending a command's process tree) and its
// actions (ending a process and its descendants).
//
// [List] returns every process and [Read] one, each as a [Proc]: pid,
// parent pid, process group, start time, zombie state and name. On Linux
// they come from /proc/PID/stat; on macOS from sysctl kern.proc. A pid
// together with its start time names one process: a pid the kernel hands
// out again comes with a later start time.
//
// [Open] holds a process read earlier. On Linux the handle is a pidfd,
// opened and then checked against the start time read before, so the
// process it holds cannot be replaced by another; without pidfd support
// (Linux before 5.3), and on macOS, the start time is checked again
// before each signal instead. [Handle.Exited] counts a zombie as gone:
// reaping it is its parent's business.
//
// Elsewhere (Windows included) every function returns an error wrapping
// [ErrNotSupported].
package proctab
