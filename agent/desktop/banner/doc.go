// Package banner shows the user of the desktop that a remote session is
// running: a small bar at the top of the X11 screen, always on top,
// saying who is viewing or controlling the screen, with an End session
// button. It is an override-redirect window drawn with the core X
// protocol (a solid background and text in the server's "fixed" font), so
// it needs no toolkit and no window manager; it shows in the captured
// video too, which is honest.
//
// Only X11 on Linux is supported; Open returns ErrNotSupported elsewhere.
package banner
