package capture

import (
	"errors"

	"github.com/deskside/deskside/agent/desktop/internal/xconn"
)

var (
	// ErrWaylandNotSupported is returned by Open in a Wayland session: the
	// session has no X display to read, or one that only shows X clients.
	// It is the same value as input.ErrWaylandNotSupported.
	ErrWaylandNotSupported = xconn.ErrWaylandNotSupported

	// ErrNoDisplay is wrapped by Open when there is no display to connect
	// to: none given and $DISPLAY unset, or the display is unreachable.
	// It is the same value as input.ErrNoDisplay.
	ErrNoDisplay = xconn.ErrNoDisplay

	// ErrNotSupported is wrapped when screen capture is not available: on
	// platforms without a backend yet, or for an X screen whose pixel
	// format is not 32-bit little-endian TrueColor.
	ErrNotSupported = errors.New("capture: not supported")

	// ErrNoSuchMonitor is wrapped by Select for an id that Monitors does
	// not list.
	ErrNoSuchMonitor = errors.New("capture: no such monitor")

	// ErrDisplayClosed is wrapped when the connection to the display is
	// lost (the X server exited, the user logged out). Open a new Capturer.
	ErrDisplayClosed = errors.New("capture: display connection lost")

	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("capture: capturer closed")
)
