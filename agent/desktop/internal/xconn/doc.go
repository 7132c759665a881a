// Package xconn opens the X11 connections of the desktop packages
// (capture, input, cursor, clipboard and their test client) with
// github.com/jezek/xgb.
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
// extensions the desktop packages use under a process-wide lock taken
// before the connection exists, and ends with a round trip so the new
// connection's reader is ordered after the writes. The registration
// happens once per layout: the presence and first event and error
// numbers of all of them together, since on a server lacking one
// extension another may take its numbers. Later connections to servers
// with the same layout (the normal case: one display) only record the
// opcodes on their own connection, which is locked. Connections to
// servers whose layouts differ should not be open at the same time. A
// package that needs another extension adds it to Dial's list rather
// than calling its Init itself.
package xconn
