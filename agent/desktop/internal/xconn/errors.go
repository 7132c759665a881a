package xconn

import "errors"

var (
	// ErrWaylandNotSupported is returned when the session is a Wayland
	// one: capturing it needs the PipeWire screen-cast portal.
	ErrWaylandNotSupported = errors.New("desktop: Wayland sessions are not supported yet; a PipeWire/portal backend will follow")

	// ErrNoDisplay is returned when there is no X display to connect to:
	// no display given and $DISPLAY unset, or the display is unreachable.
	ErrNoDisplay = errors.New("desktop: no X display")
)
