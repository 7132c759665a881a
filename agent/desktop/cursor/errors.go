package cursor

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

	// ErrNotSupported is wrapped when the pointer cannot be followed: on
	// platforms without a backend yet, or an X server without XFIXES 2.
	ErrNotSupported = errors.New("cursor: not supported")

	// ErrBadConfig is wrapped by Open for an invalid Config.
	ErrBadConfig = errors.New("cursor: bad config")
)
