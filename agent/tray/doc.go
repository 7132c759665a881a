// Package tray is deskside-tray, the program in the user's graphical
// session (started at login by the XDG autostart entry AutostartEntry): a
// tray icon (Get help…, My requests, the connection state, and during a
// remote session who is viewing or controlling the screen with End
// session) and the Get help page it serves on loopback.
//
// The tray talks to the agent through Agent: DialAgent reaches the agent
// service over its local IPC (internal/localipc, served by agent/traysvc);
// LinkAgent implements Agent directly over an agent link (agent/link) in
// the same process, for tests against a real relay.
package tray
