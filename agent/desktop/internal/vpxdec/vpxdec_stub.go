//go:build !linux || !cgo || novpx

package vpxdec

// Decoder is a VP8 decoder; this build has none.
type Decoder struct{}

// New returns [ErrNotCompiled].
func New() (*Decoder, error) { return nil, ErrNotCompiled }

// Decode returns [ErrNotCompiled].
func (d *Decoder) Decode([]byte) (*Frame, error) { return nil, ErrNotCompiled }

// Close does nothing.
func (d *Decoder) Close() error { return nil }
