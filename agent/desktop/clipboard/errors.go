package clipboard

import (
	"errors"

	"github.com/deskside/deskside/agent/desktop/internal/xconn"
)

var (
	// ErrWaylandNotSupported is returned by Open in a Wayland session. It
	// is the same value as capture.ErrWaylandNotSupported.
	ErrWaylandNotSupported = xconn.ErrWaylandNotSupported

	// ErrNoDisplay is wrapped by Open when there is no display to connect
	// to. It is the same value as capture.ErrNoDisplay.
	ErrNoDisplay = xconn.ErrNoDisplay

	// ErrNotSupported is wrapped when clipboard sharing is not available:
	// on platforms without a backend yet, or an X server without XFIXES.
	ErrNotSupported = errors.New("clipboard: not supported")

	// ErrTooLarge is wrapped by SetText for a text over MaxText bytes.
	ErrTooLarge = errors.New("clipboard: text too large")

	// ErrNotOwner is wrapped by SetText when the server did not make the
	// Clipboard the selection owner (another client took it at once).
	ErrNotOwner = errors.New("clipboard: could not take the clipboard")

	// ErrBadConfig is wrapped by Open for an invalid Config.
	ErrBadConfig = errors.New("clipboard: bad config")

	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("clipboard: closed")
)
