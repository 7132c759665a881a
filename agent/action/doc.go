// Package action carries out the remediation actions a technician may ask
// of an endpoint ([desksidev1.RunAction]): end a process, restart a
// service, flush the DNS cache, restart the machine. The relay decides who
// may ask (the actions are role-gated there); the agent checks that the
// request itself is sane and runs it.
//
// Nothing goes through a shell. External tools run through an [Executor]
// with fixed arguments; the default one looks tools up only in the system
// directories (/usr/sbin, /usr/bin, /sbin, /bin; System32 on Windows),
// gives them a fixed environment (LANG=C, so their messages can be
// recognised), and caps what they print. A service name is checked
// against ^[A-Za-z0-9@._:-]{1,128}$ and must not start with '-' or '.'
// before anything runs.
//
// # Actions
//
// KillProcess refuses pid 0, 1, negative pids, the agent itself and the
// agent's ancestors (whose tree would include the agent). It sends
// SIGTERM to the process and its descendants (found through the ppid
// links, held through pidfds on Linux so that a recycled pid is never
// signalled), waits up to [Options.KillGrace] (5 s) for them to exit,
// then sends SIGKILL to what is left. Windows uses taskkill /T, then
// taskkill /T /F.
//
// RestartService runs systemctl restart NAME.service and then systemctl
// is-active; a unit that comes back "failed" is an error, other states are
// reported. Without systemd the error wraps [ErrNoSystemd]. Windows uses
// sc stop, waits for the service to stop, then sc start.
//
// FlushDns tries resolvectl flush-caches, then systemd-resolve
// --flush-caches (older systems), then nscd -i hosts. A tool that is
// missing, or whose daemon is not running, is skipped; when none is left
// the error wraps [ErrNotSupported]: there is no local cache to flush.
// Windows uses ipconfig /flushdns.
//
// Reboot runs shutdown -r +MINUTES MESSAGE: systemd's shutdown tells the
// logged-in users (wall) at once and again as the time nears. The delay
// defaults to 5 minutes and is kept between 1 minute and 24 hours,
// rounded up to whole minutes. The message is cleaned of control and
// escape sequences (it ends up on terminals), capped, and prefixed with
// "Deskside: ". Someone at the machine can cancel it with shutdown -c
// (shutdown /a on Windows, which uses shutdown /r /t SECONDS /c MESSAGE).
//
// On macOS only KillProcess is supported; the others return
// [ErrNotSupported].
package action
