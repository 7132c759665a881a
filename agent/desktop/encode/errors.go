package encode

import "errors"

var (
	// ErrNotCompiled is returned by [NewVP8] in a build without libvpx
	// (see the package documentation; [Available] is false there).
	ErrNotCompiled = errors.New("encode: this agent was built without libvpx: rebuild with cgo and libvpx-dev installed (and without the novpx tag)")

	// ErrBadFrame is wrapped by [Encoder.Encode] when the frame does not fit
	// the encoder's size: a stride shorter than Width×4 bytes or a buffer
	// shorter than stride×(Height-1) + Width×4 bytes.
	ErrBadFrame = errors.New("encode: bad frame")

	// ErrBadConfig is wrapped by [Config.CheckAndSetDefaults] and [NewVP8]
	// for a configuration they refuse; the message names the field.
	ErrBadConfig = errors.New("encode: bad config")

	// ErrClosed is returned by the methods of an [Encoder] after Close.
	ErrClosed = errors.New("encode: encoder closed")
)
