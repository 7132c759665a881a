package tray

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"os"

	"github.com/deskside/deskside/agent/desktop/capture"
)

// CaptureScreen grabs the whole screen of the tray's own session (the
// display in DISPLAY) as a PNG, with the agent's capture code.
func CaptureScreen() ([]byte, error) {
	c, err := capture.Open(os.Getenv("DISPLAY"), slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, fmt.Errorf("cannot take a screenshot of this session: %w; attach none, or describe what you see", err)
	}
	defer c.Close()
	f, err := c.Capture()
	if err != nil {
		return nil, fmt.Errorf("cannot take a screenshot of this session: %w", err)
	}
	return encodeBGRX(f.Pix, f.Width, f.Height, f.Stride)
}

// encodeBGRX encodes B, G, R, X pixels as an opaque PNG.
func encodeBGRX(pix []byte, w, h, stride int) ([]byte, error) {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		src, dst := pix[y*stride:], img.Pix[y*img.Stride:]
		for x := range w {
			dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = src[4*x+2], src[4*x+1], src[4*x], 0xff
		}
	}
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
