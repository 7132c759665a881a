package cursor

import (
	"bytes"
	"cmp"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"time"
)

// MaxSize is the largest width and height of a reported cursor image.
const MaxSize = 256

// DefaultInterval is how often the pointer is queried by default.
const DefaultInterval = time.Second / 30

// Position is where the pointer is, in virtual-screen coordinates.
type Position struct {
	X, Y int
	// OnScreen is false when the pointer is on another X screen of the
	// display (X and Y are then meaningless).
	OnScreen bool
}

// Shape is a cursor image.
type Shape struct {
	// Width and Height are the image size, at most MaxSize each.
	Width, Height int
	// HotX and HotY are the hot spot: the pixel of the image that is at
	// the pointer's position.
	HotX, HotY int
	// Serial identifies the cursor image on the X server.
	Serial uint32
	// PNG is the image, RGBA with (straight) alpha.
	PNG []byte
}

// Tracker follows the pointer until it is closed.
type Tracker interface {
	// Close stops following the pointer and closes the display
	// connection; no callback runs after it returns. It is idempotent.
	Close() error
}

// Config configures Open.
type Config struct {
	// Display is the X display; "" means $DISPLAY (see capture.Open for
	// the Wayland rules).
	Display string
	// Logger receives debug and warning messages; nil discards them.
	Logger *slog.Logger
	// Interval is how often the pointer is queried; default
	// DefaultInterval (30 a second).
	Interval time.Duration
	// OnMove is called with the pointer's position at the start and
	// whenever it moved. OnShape is called with the cursor image at the
	// start and whenever it changed. Both run on the Tracker's goroutine
	// and should return quickly; at least one is required.
	OnMove  func(Position)
	OnShape func(Shape)
}

// CheckAndSetDefaults fills in the defaults and reports a bad field,
// wrapping ErrBadConfig.
func (c *Config) CheckAndSetDefaults() error {
	if c.OnMove == nil && c.OnShape == nil {
		return fmt.Errorf("%w: OnMove or OnShape is required", ErrBadConfig)
	}
	if c.Interval < 0 {
		return fmt.Errorf("%w: Interval %v is negative", ErrBadConfig, c.Interval)
	}
	c.Interval = cmp.Or(c.Interval, DefaultInterval)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.OnMove == nil {
		c.OnMove = func(Position) {}
	}
	if c.OnShape == nil {
		c.OnShape = func(Shape) {}
	}
	return nil
}

// EncodeARGB makes a Shape from a cursor image of w×h premultiplied ARGB
// pixels (0xAARRGGBB, as XFIXES gives them) with hot spot (hx, hy),
// scaling it down to fit MaxSize×MaxSize.
func EncodeARGB(w, h, hx, hy int, argb []uint32) (Shape, error) {
	if w <= 0 || h <= 0 || len(argb) < w*h {
		return Shape{}, fmt.Errorf("cursor: image %dx%d with %d pixels", w, h, len(argb))
	}
	ow, oh := w, h
	if w > MaxSize || h > MaxSize {
		// Keep the aspect ratio: the longer side becomes MaxSize.
		if w >= h {
			w, h = MaxSize, max(1, h*MaxSize/w)
		} else {
			w, h = max(1, w*MaxSize/h), MaxSize
		}
		hx, hy = hx*w/ow, hy*h/oh
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h)) // premultiplied, like X's
	for y := range h {
		sy := y * oh / h
		for x := range w {
			p := argb[sy*ow+x*ow/w]
			a := byte(p >> 24)
			i := y*img.Stride + 4*x
			// A premultiplied channel cannot exceed alpha; broken themes
			// would otherwise wrap around in the conversion to PNG's.
			img.Pix[i+0] = min(byte(p>>16), a)
			img.Pix[i+1] = min(byte(p>>8), a)
			img.Pix[i+2] = min(byte(p), a)
			img.Pix[i+3] = a
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return Shape{}, fmt.Errorf("cursor: encode PNG: %w", err)
	}
	return Shape{Width: w, Height: h, HotX: min(max(hx, 0), w-1), HotY: min(max(hy, 0), h-1), PNG: buf.Bytes()}, nil
}
