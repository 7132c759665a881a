// Package capture grabs the agent's screen for the remote-desktop feature:
// a [Capturer] lists the monitors, captures one of them (or the whole
// screen) as BGRA frames for the video encoder, and tells cheaply whether
// anything changed since the last frame.
//
// # Linux (X11)
//
// [Open] connects to the X display with github.com/jezek/xgb (pure Go;
// MIT-MAGIC-COOKIE-1 from $XAUTHORITY). Monitors come from RandR 1.5
// (GetMonitors); without it the whole screen is one monitor.
//
// Images are grabbed with MIT-SHM: the X server writes them into a System V
// shared-memory segment the Capturer created (shm.GetImage), sized for the
// selected monitor and replaced when the selection changes. The segment is
// marked for removal as soon as the server has attached it, so the kernel
// frees it even if the agent dies; Close detaches it on both sides. When
// MIT-SHM is missing or unusable (a remote X server, another IPC
// namespace) the Capturer falls back to plain GetImage, which copies the
// image through the socket, and logs a warning; [Info] tells which path a
// Capturer took.
//
// Change detection uses the DAMAGE extension: a damage object on the root
// window (bounding-box level) makes the server send an event when
// something is drawn. A watcher goroutine reads those events as they
// arrive, records the damaged area and signals [Notifier.Changes], so the
// session captures as soon as the screen changes instead of on a fixed
// tick. When no damage arrived, Capture returns Changed=false without
// touching the server or copying anything: an idle screen costs well
// under a microsecond per Capture. When damage arrived, Capture subtracts
// it on the server (so drawing that happens during the grab raises a fresh
// event) and fetches only the rows the damaged bounding box covers within
// the selected monitor, copying them into the frame. Without DAMAGE there
// is no watcher (Changes is nil): every Capture grabs the whole image and
// compares it with the previous frame (a memcmp, which is cheaper than
// hashing both and exact), copying only when they differ.
//
// The watcher sees the X connection end (server exit, logout) at once and
// signals; the next Capture returns [ErrDisplayClosed]. Without DAMAGE an
// idle Capture makes one round trip to the server once a second for the
// same purpose. A screen resize (RandR) is noticed through events and the
// selection re-resolved.
//
// Wayland sessions are refused with [ErrWaylandNotSupported] (see
// [Open]); a PipeWire screen-cast portal backend will follow behind the
// same interface. Other platforms get [ErrNotSupported] from Open until
// their backends exist.
//
// Frames do not include the mouse pointer: X never draws it into
// GetImage results. The viewer draws it from what agent/desktop/cursor
// reports.
package capture
