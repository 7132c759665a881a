// Package xconn opens the X11 connections of the desktop packages
// (capture, input and their test client) with github.com/jezek/xgb.
//
// Dial resolves the display: an explicit display string (":N") is used as
// given; an empty one means the session's $DISPLAY, and then a Wayland
// session (XDG_SESSION_TYPE=wayland, or $WAYLAND_DISPLAY set and no
// reachable X display) is refused with [ErrWaylandNotSupported]: XWayland
// would only show X clients, not the desktop. Authentication is xgb's:
// MIT-MAGIC-COOKIE-1 from $XAUTHORITY (or ~/.Xauthority).
//
// # Extensions and xgb's global tables
//
// xgb decodes extension events and errors through process-global maps
// that each extension's Init writes and every connection's reader
// goroutine reads without a lock. Dial therefore registers all the
// extensions the desktop packages use, once per set of event and error
// numbers, under a process-wide lock taken before the connection exists,
// and ends with a round trip so the new connection's reader is ordered
// after the writes. Later connections to servers with the same numbers
// (the normal case: one display) only record the opcode on their own
// connection, which is locked. Connections to servers whose extension
// numbers differ should not be open at the same time. A package that
// needs another extension adds it to Dial's list rather than calling its
// Init itself.
package xconn
