// Package tray is deskside-tray, the program in the user's graphical
// session: a tray icon (Get help…, My requests, the connection state, and
// during a remote session who is viewing or controlling the screen with
// End session) and the Get help page it serves on loopback.
//
// The tray talks to the agent through Agent. The agent service's local
// IPC (internal/localipc) is the transport the installed tray will use;
// until it carries Get help, LinkAgent implements Agent directly over an
// agent link (agent/link) in the same process, which is what the tests
// run against a real relay.
package tray
