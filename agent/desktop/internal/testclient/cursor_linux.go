package testclient

import (
	"fmt"

	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop/internal/xconn"
)

// Glyphs of the X cursor font (X11/cursorfont.h) for SetCursor.
const (
	CursorArrow     = 2   // XC_arrow
	CursorCrosshair = 34  // XC_crosshair
	CursorHand      = 60  // XC_hand2
	CursorXterm     = 152 // XC_xterm
)

// SetCursor gives the client's window a cursor from the X cursor font
// (black on white), shown while the pointer is over it, and returns once
// the server has done so.
func (c *Client) SetCursor(glyph int) error {
	x := c.conn.X
	font, err := xproto.NewFontId(x)
	if err != nil {
		return err
	}
	const name = "cursor"
	if err := xproto.OpenFontChecked(x, font, uint16(len(name)), name).Check(); err != nil {
		return fmt.Errorf("testclient: open the cursor font: %w", err)
	}
	defer xproto.CloseFont(x, font)
	cur, err := xproto.NewCursorId(x)
	if err != nil {
		return err
	}
	if err := xproto.CreateGlyphCursorChecked(x, cur, font, font, uint16(glyph), uint16(glyph+1),
		0, 0, 0, 0xffff, 0xffff, 0xffff).Check(); err != nil {
		return fmt.Errorf("testclient: create cursor: %w", err)
	}
	defer xproto.FreeCursor(x, cur) // the window keeps its own reference
	if err := xproto.ChangeWindowAttributesChecked(x, c.win, xproto.CwCursor, []uint32{uint32(cur)}).Check(); err != nil {
		return fmt.Errorf("testclient: set the window's cursor: %w", err)
	}
	return nil
}

// WarpPointer moves the pointer to screen coordinates (x, y).
func (c *Client) WarpPointer(x, y int) error {
	return xproto.WarpPointerChecked(c.conn.X, 0, c.conn.Root, 0, 0, 0, 0, int16(x), int16(y)).Check()
}

// Monitor is a RandR 1.5 monitor for AddMonitors.
type Monitor struct {
	Name       string
	X, Y, W, H int
	Primary    bool
}

// AddMonitors defines RandR 1.5 monitors on the display (they outlive the
// client, as monitors of the server). It fails when the server refuses
// SetMonitor; tests may skip then.
func (c *Client) AddMonitors(mons []Monitor) error {
	x := c.conn.X
	if !c.conn.Has(xconn.ExtRandR) {
		return fmt.Errorf("testclient: the X server has no RandR")
	}
	if _, err := randr.QueryVersion(x, 1, 5).Reply(); err != nil {
		return err
	}
	for _, m := range mons {
		atom, err := xproto.InternAtom(x, false, uint16(len(m.Name)), m.Name).Reply()
		if err != nil {
			return err
		}
		if err := randr.SetMonitorChecked(x, c.conn.Root, randr.MonitorInfo{
			Name: atom.Atom, Primary: m.Primary, X: int16(m.X), Y: int16(m.Y),
			Width: uint16(m.W), Height: uint16(m.H), WidthInMillimeters: uint32(m.W / 4), HeightInMillimeters: uint32(m.H / 4),
		}).Check(); err != nil {
			return fmt.Errorf("testclient: RandR SetMonitor %s: %w", m.Name, err)
		}
	}
	return nil
}
