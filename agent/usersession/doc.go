// Package usersession serves remote-desktop sessions from an agent that
// runs as a system service: the service has no display of its own, so it
// finds the graphical session of the user at the console (Find), launches
// a helper process as that user with that session's DISPLAY and
// XAUTHORITY (`deskside-agent desktop-helper`), and proxies the session's
// Run, Signal and End to it over the local IPC socket
// (internal/localipc). The helper runs the ordinary in-process desktop
// (agent/desktop) inside the user's session.
//
// Sessions are found in logind's session records (the files under
// /run/systemd/sessions that sd-login(3) itself reads), and otherwise
// among the sessions a process of the user registered over the IPC socket
// (the tray, started at login). See docs/adr/0027-desktop-helper-in-the-user-session.md.
//
// On Windows the LocalSystem service starts the same helper in the console
// user's session (WTSQueryUserToken, CreateEnvironmentBlock,
// CreateProcessAsUser on winsta0\default) and talks to it over localipc's
// named pipe, checking the helper's SID; the helper cannot capture there
// yet (ErrNoCapture). The session proxy is shared (proxy.go, helper.go).
// NewRunner returns ErrUnsupported on macOS.
package usersession

import "errors"

// Errors. Their messages are what the console shows as the session's end
// reason.
var (
	// ErrNoSession: nobody is logged in to a graphical session.
	ErrNoSession = errors.New("no user is logged in at the console")
	// ErrUnsupported: this platform has no user-session helper yet.
	ErrUnsupported = errors.New("remote desktop from the agent service is not built for this platform yet (Linux and Windows only); run the agent in the user's session instead")
)
