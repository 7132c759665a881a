package input

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

	// ErrNotSupported is wrapped when input injection is not available:
	// on platforms without a backend yet, or an X server without XTEST.
	ErrNotSupported = errors.New("input: not supported")

	// ErrUnknownKey is wrapped by Key for a KeyboardEvent.code the
	// Injector does not know.
	ErrUnknownKey = errors.New("input: unknown key code")

	// ErrKeyUnavailable is wrapped by Key when the key's keysym is on no
	// key of the keyboard mapping and no spare keycode is left to bind it.
	ErrKeyUnavailable = errors.New("input: key not available on this keyboard")

	// ErrInvalidButton is wrapped by MouseButton for a button other than
	// 1 (left), 2 (middle), 3 (right), 8 (back) or 9 (forward).
	ErrInvalidButton = errors.New("input: invalid mouse button")

	// ErrDisplayClosed is wrapped when the connection to the display is
	// lost. Open a new Injector.
	ErrDisplayClosed = errors.New("input: display connection lost")

	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("input: injector closed")
)
