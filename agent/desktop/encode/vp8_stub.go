//go:build !linux || !cgo || novpx

package encode

// Available reports whether this build has the libvpx encoder.
const Available = false

// NewVP8 returns [ErrNotCompiled]: this build has no libvpx (see the
// package documentation).
func NewVP8(cfg Config) (Encoder, error) {
	return nil, ErrNotCompiled
}
