// Package cursor follows the agent desktop's mouse pointer for the
// remote-desktop session: where it is and what it looks like, so the
// technician's viewer can draw it (captured frames do not contain it).
//
// # Linux (X11)
//
// [Open] makes a github.com/jezek/xgb connection and asks XFIXES
// (SelectCursorInput on the root window) to be told when the displayed
// cursor changes. A goroutine then wakes [Config.Interval] times a second
// (default 30): it queries the pointer (QueryPointer on the root window)
// and reports the position when it moved, and after a CursorNotify (and
// once at the start) fetches the image with GetCursorImage and reports
// it as a PNG with alpha when its serial changed. X cursor images are
// premultiplied ARGB; they are encoded as such (PNG stores straight
// alpha, which image/png converts to). Images larger than [MaxSize] on a
// side are scaled down, nearest neighbour, with the hot spot scaled too.
//
// A lost display connection ends the goroutine (logged); Close ends it and
// closes the connection. Wayland sessions are refused with
// [ErrWaylandNotSupported]; other platforms get [ErrNotSupported].
package cursor
