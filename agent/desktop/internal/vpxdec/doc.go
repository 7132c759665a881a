// Package vpxdec decodes VP8 frames with libvpx back to I420, so the tests
// of package encode can check what a viewer would see. It is built under
// the same conditions as the encoder (Linux, cgo, no novpx tag); elsewhere
// [New] returns [ErrNotCompiled].
package vpxdec

import "errors"

// ErrNotCompiled is returned by [New] in a build without libvpx.
var ErrNotCompiled = errors.New("vpxdec: built without libvpx")

// Frame is one decoded I420 picture; the planes are copies.
type Frame struct {
	Width, Height     int
	Y, U, V           []byte
	YStride, UVStride int
}

// RGB returns the colour at (x, y), converted back with BT.601
// limited-range coefficients.
func (f *Frame) RGB(x, y int) (r, g, b uint8) {
	yy := int(f.Y[y*f.YStride+x]) - 16
	u := int(f.U[(y/2)*f.UVStride+x/2]) - 128
	v := int(f.V[(y/2)*f.UVStride+x/2]) - 128
	clamp := func(n int) uint8 { return uint8(min(max(n, 0), 255)) }
	r = clamp((298*yy + 409*v + 128) >> 8)
	g = clamp((298*yy - 100*u - 208*v + 128) >> 8)
	b = clamp((298*yy + 516*u + 128) >> 8)
	return r, g, b
}
