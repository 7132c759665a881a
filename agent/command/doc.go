// Package command runs a technician's command line or script on the
// endpoint and streams its output back, as the agent's side of
// [desksidev1.RunCommand].
//
// A [Runner] runs one request per [Runner.Run] call; calls may run
// concurrently. Run returns a [desksidev1.CommandExit] in every case; a
// request that cannot run at all gets one with its error field set.
//
// # What runs
//
// A command line runs as /bin/sh -c LINE (cmd.exe /D /S /C "LINE" on
// Windows). A script is written to a private temporary directory (0700,
// owned by the run-as user, removed afterwards) and handed to the
// interpreter named on its #! line, /bin/sh by default (PowerShell with
// -NoProfile -NonInteractive -ExecutionPolicy Bypass -File on Windows).
// The interpreter is run directly with the script's path as its argument,
// as the kernel would, so a noexec /tmp does not matter.
//
// Processes get a small fixed environment (PATH, HOME, USER, LOGNAME,
// SHELL=/bin/sh, LANG=C.UTF-8, TERM=dumb; on Windows the system variables
// a program needs), nothing from the agent's own. Standard input is
// /dev/null. The working directory is the run-as user's home when it
// exists, else / (the system drive's root on Windows).
//
// run_as names a local user (or a numeric uid). The process then runs
// with that user's uid, primary gid and supplementary groups, which needs
// the agent to run as root ([ErrNeedRoot] otherwise; naming the agent's
// own user is always allowed). "root" is accepted like any other name.
// Windows does not support run_as ([ErrNotSupported]).
//
// # Output
//
// Reads from stdout and stderr are coalesced into chunks of up to
// [Options.ChunkBytes] of one stream; a chunk is sent when it is full,
// when the other stream produces output, or [Options.FlushInterval] after
// its first byte, so output streams live. Chunks are numbered from 1 in
// the order their bytes arrived. stdout and stderr are two pipes read
// side by side, so writes to the two a few microseconds apart may arrive
// in either order; within one stream the order is exact.
//
// stdout and stderr together are capped (max_output_bytes, default
// [Options.DefaultMaxOutput]). Past the cap the rest is read and
// discarded, truncated is set, and after the process ends one last stderr
// chunk carries the line
//
//	[deskside: output truncated at N bytes; the command kept running until it ended]
//
// The process is not killed at the cap: a noisy installer or update
// should still finish what it does; the timeout and the technician's
// cancel bound it. output_bytes counts everything the command wrote,
// including what was discarded (the marker is not counted).
//
// If emit fails (the console went away), the command is cancelled as if
// the technician had cancelled it and no further output is emitted.
// emit is called from Run's goroutine, one call at a time; it must return
// once ctx is done.
//
// # Process tree
//
// The command starts as the leader of its own process group. When it
// times out (timeout, default [Options.DefaultTimeout], at most
// [MaxTimeout]) or is cancelled, the whole tree gets SIGTERM (and
// SIGCONT, so stopped processes see it), then SIGKILL after
// [Options.KillGrace]. When the leader exits by itself, whatever it left
// behind is ended the same way: a command's processes end with it. To
// start something lasting, use the service manager (systemctl start …).
//
// The tree is the process group, plus, on Linux, every descendant of the
// leader or of a group member found by walking the ppid links in
// /proc/*/stat, plus every process that holds the command's output pipes
// (found through /proc/*/fd). A child that calls setsid (or setpgid)
// leaves the process group; it is still found while its parent chain up
// to the command is intact, or while it keeps the command's stdout or
// stderr open, unless it is a child of the agent itself: the agent
// forks other commands (and helpers) while this one's pipes are open,
// and each holds copies of them between its fork and its exec; it is
// never this command's (whose leader is in the group). A process that
// both escapes the group and loses its
// parent chain and closes the output pipes — a properly double-forked
// daemon — is out of reach; on macOS only the group and the ppid walk
// (sysctl kern.proc) are used. Extra processes are signalled through a
// pidfd opened after checking the process's start time, so a recycled pid
// is never hit; the group is signalled with kill(-pgid), and the leader
// is reaped with its wait status by os/exec (which uses a pidfd). A
// process that is already a zombie counts as gone: reaping it is its
// parent's business (which may be an init that never does, as in some
// containers).
//
// Should the agent itself die, its commands are not ended by it; under
// systemd the agent unit's control group ends them when the unit stops.
//
// Once the tree is gone, the output pipes are read until EOF; should
// something unknown still hold them, reading stops after they stay idle
// for a second (at most ten seconds of draining). Run returns only after
// that, with every goroutine it started ended.
//
// On Windows the command runs in a Job object (created suspended, added
// to the job, then resumed, so no child can slip out), which is
// terminated at once on cancel or timeout: Windows has no SIGTERM for a
// console tree. Should the job not be available, taskkill /T /F /PID is
// used.
//
// # Logging
//
// Start and end are logged with the kind of request, its size, the run-as
// user, the pid, and the outcome; never the command text or the output,
// which may hold secrets.
package command
