package testclient

import (
	"fmt"
	"image/color"

	"github.com/jezek/xgb/xproto"
)

// Rect is a rectangle in window coordinates.
type Rect struct{ X, Y, W, H int }

// maxRectsPerRequest keeps a PolyFillRectangle request under the core
// protocol's 256 KiB request limit (8 bytes a rectangle).
const maxRectsPerRequest = 8000

// FillRects paints rectangles in one colour, in as few requests as the
// protocol allows, and returns once the server has done so. Benchmarks
// draw text-like pictures with it; a later repaint covers them.
func (c *Client) FillRects(col color.RGBA, rects []Rect) error {
	c.drawMu.Lock()
	defer c.drawMu.Unlock()
	c.fillRects(col, rects)
	if _, err := xproto.GetInputFocus(c.conn.X).Reply(); err != nil {
		return fmt.Errorf("testclient: fill: %w", err)
	}
	return nil
}

// ScrollUp moves the window's contents up by dy pixels, as an editor or a
// terminal scrolls, paints the uncovered bottom rows in bg and the
// rectangles in fg (meant for those rows), and returns once the server has
// done so.
func (c *Client) ScrollUp(dy int, bg, fg color.RGBA, rects []Rect) error {
	if dy <= 0 || dy >= c.height {
		return fmt.Errorf("testclient: scroll by %d of %d rows", dy, c.height)
	}
	c.drawMu.Lock()
	defer c.drawMu.Unlock()
	xc := c.conn.X
	// No GraphicsExpose events: the whole window is visible.
	xproto.ChangeGC(xc, c.gc, xproto.GcGraphicsExposures, []uint32{0})
	xproto.CopyArea(xc, xproto.Drawable(c.win), xproto.Drawable(c.win), c.gc,
		0, int16(dy), 0, 0, uint16(c.width), uint16(c.height-dy))
	c.fillRects(bg, []Rect{{X: 0, Y: c.height - dy, W: c.width, H: dy}})
	c.fillRects(fg, rects)
	if _, err := xproto.GetInputFocus(xc).Reply(); err != nil {
		return fmt.Errorf("testclient: scroll: %w", err)
	}
	return nil
}

// fillRects sends the fill requests; the caller holds drawMu and waits.
func (c *Client) fillRects(col color.RGBA, rects []Rect) {
	if len(rects) == 0 {
		return
	}
	xc := c.conn.X
	xproto.ChangeGC(xc, c.gc, xproto.GcForeground, []uint32{c.pixel(col)})
	batch := make([]xproto.Rectangle, 0, min(len(rects), maxRectsPerRequest))
	for i, r := range rects {
		batch = append(batch, xproto.Rectangle{X: int16(r.X), Y: int16(r.Y), Width: uint16(r.W), Height: uint16(r.H)})
		if len(batch) == cap(batch) || i == len(rects)-1 {
			xproto.PolyFillRectangle(xc, xproto.Drawable(c.win), c.gc, batch)
			batch = batch[:0]
		}
	}
}
