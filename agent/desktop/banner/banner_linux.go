package banner

import (
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop/internal/xconn"
)

// Layout, in pixels.
const (
	pad    = 8 // around the text and the button
	border = 2 // the button's frame
)

// Colours (16 bits a channel, as X wants them).
var (
	colBar    = [3]uint16{0x9b00, 0x1c00, 0x1c00} // dark red: hard to miss
	colText   = [3]uint16{0xffff, 0xffff, 0xffff}
	colButton = [3]uint16{0xffff, 0xffff, 0xffff}
	colLabel  = [3]uint16{0x9b00, 0x1c00, 0x1c00}
)

type banner struct {
	c       *xconn.Conn
	log     *slog.Logger
	win     xproto.Window // the bar
	btn     xproto.Window // End session, a child of the bar
	gcBar   xproto.Gcontext
	gcBtn   xproto.Gcontext
	text    string // Latin-1, for the fallback font
	text16  []xproto.Char2b
	wide    bool // the Unicode font is open: draw text16
	label   string
	ascent  int
	btnW    int
	btnH    int
	onEnd   func()
	endOnce sync.Once

	closeOnce sync.Once
	done      chan struct{}
}

// Open shows the banner at the top of the display's screen until Close.
func Open(cfg Config) (_ io.Closer, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := xconn.Dial(cfg.Display, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	b := &banner{c: c, log: log, text: latin1(cfg.Text), text16: ucs2(cfg.Text), label: ButtonLabel, onEnd: cfg.OnEnd, done: make(chan struct{})}
	if b.onEnd == nil {
		b.onEnd = func() {}
	}
	if err := b.create(cfg.Text); err != nil {
		return nil, fmt.Errorf("banner: display %q: %w", c.Display, err)
	}
	go b.loop()
	return b, nil
}

func (b *banner) create(utf8Text string) error {
	x, scr := b.c.X, b.c.Screen
	font, err := xproto.NewFontId(x)
	if err != nil {
		return err
	}
	// The Unicode encoding of "fixed" draws names in any script it
	// covers (Latin, Greek, Cyrillic, Hebrew, Thai…); where it is not
	// installed, "fixed" in Latin-1 shows "?" for the rest.
	if xproto.OpenFontChecked(x, font, uint16(len(unicodeFont)), unicodeFont).Check() == nil {
		b.wide = true
	} else if err := xproto.OpenFontChecked(x, font, uint16(len("fixed")), "fixed").Check(); err != nil {
		return fmt.Errorf("open the core font \"fixed\": %w", err)
	}
	defer xproto.CloseFont(x, font)
	fi, err := xproto.QueryFont(x, xproto.Fontable(font)).Reply()
	if err != nil {
		return fmt.Errorf("query font: %w", err)
	}
	cw := int(fi.MaxBounds.CharacterWidth)
	b.ascent = int(fi.FontAscent)
	lineH := int(fi.FontAscent) + int(fi.FontDescent)

	b.btnW = len(b.label)*cw + 2*pad
	b.btnH = lineH + pad
	barH := b.btnH + pad
	chars := len(b.text)
	if b.wide {
		chars = len(b.text16)
	}
	barW := 3*pad + chars*cw + b.btnW
	// At the top of the primary monitor, in the middle.
	mx, my, sw := b.primary()
	if barW > sw {
		barW = sw
	}
	pixel := func(c [3]uint16) (uint32, error) {
		r, err := xproto.AllocColor(x, scr.DefaultColormap, c[0], c[1], c[2]).Reply()
		if err != nil {
			return 0, fmt.Errorf("allocate a colour: %w", err)
		}
		return r.Pixel, nil
	}
	var px [4]uint32
	for i, c := range [][3]uint16{colBar, colText, colButton, colLabel} {
		if px[i], err = pixel(c); err != nil {
			return err
		}
	}

	if b.win, err = xproto.NewWindowId(x); err != nil {
		return err
	}
	// Override-redirect: no window manager frames, moves or hides it.
	if err := xproto.CreateWindowChecked(x, scr.RootDepth, b.win, b.c.Root,
		int16(mx+(sw-barW)/2), int16(my), uint16(barW), uint16(barH), 0,
		xproto.WindowClassInputOutput, scr.RootVisual,
		xproto.CwBackPixel|xproto.CwOverrideRedirect|xproto.CwEventMask,
		[]uint32{px[0], 1, xproto.EventMaskExposure | xproto.EventMaskVisibilityChange}).Check(); err != nil {
		return fmt.Errorf("create the window: %w", err)
	}
	if b.btn, err = xproto.NewWindowId(x); err != nil {
		return err
	}
	if err := xproto.CreateWindowChecked(x, scr.RootDepth, b.btn, b.win,
		int16(barW-pad-b.btnW), int16(pad/2), uint16(b.btnW), uint16(b.btnH), 0,
		xproto.WindowClassInputOutput, scr.RootVisual,
		xproto.CwBackPixel|xproto.CwEventMask,
		[]uint32{px[2], xproto.EventMaskExposure | xproto.EventMaskButtonPress | xproto.EventMaskButtonRelease}).Check(); err != nil {
		return fmt.Errorf("create the button: %w", err)
	}
	b.setName(b.win, Title+": "+utf8Text)
	b.setName(b.btn, b.label)
	cls := "deskside-banner\x00Deskside\x00"
	xproto.ChangeProperty(x, xproto.PropModeReplace, b.win, xproto.AtomWmClass, xproto.AtomString, 8, uint32(len(cls)), []byte(cls))

	gc := func(win xproto.Window, fg, bg uint32) (xproto.Gcontext, error) {
		id, err := xproto.NewGcontextId(x)
		if err != nil {
			return 0, err
		}
		if err := xproto.CreateGCChecked(x, id, xproto.Drawable(win), xproto.GcForeground|xproto.GcBackground|xproto.GcFont,
			[]uint32{fg, bg, uint32(font)}).Check(); err != nil {
			return 0, fmt.Errorf("create a graphics context: %w", err)
		}
		return id, nil
	}
	if b.gcBar, err = gc(b.win, px[1], px[0]); err != nil {
		return err
	}
	if b.gcBtn, err = gc(b.btn, px[3], px[2]); err != nil {
		return err
	}
	xproto.MapWindow(x, b.btn)
	if err := xproto.MapWindowChecked(x, b.win).Check(); err != nil {
		return fmt.Errorf("map the window: %w", err)
	}
	return nil
}

// primary returns the top-left corner and width of the primary monitor
// (RandR 1.5), or of the whole screen.
func (b *banner) primary() (x, y, width int) {
	width = int(b.c.Screen.WidthInPixels)
	if !b.c.Has(xconn.ExtRandR) {
		return 0, 0, width
	}
	if v, err := randr.QueryVersion(b.c.X, 1, 5).Reply(); err != nil || (v.MajorVersion == 1 && v.MinorVersion < 5) {
		return 0, 0, width
	}
	r, err := randr.GetMonitors(b.c.X, b.c.Root, true).Reply()
	if err != nil || len(r.Monitors) == 0 {
		return 0, 0, width
	}
	m := r.Monitors[0]
	for _, mi := range r.Monitors {
		if mi.Primary {
			m = mi
			break
		}
	}
	return int(m.X), int(m.Y), int(m.Width)
}

// setName sets WM_NAME (Latin-1) and _NET_WM_NAME (UTF-8).
func (b *banner) setName(w xproto.Window, name string) {
	x := b.c.X
	l := latin1(name)
	xproto.ChangeProperty(x, xproto.PropModeReplace, w, xproto.AtomWmName, xproto.AtomString, 8, uint32(len(l)), []byte(l))
	netName, err1 := atom(b.c, "_NET_WM_NAME")
	utf8, err2 := atom(b.c, "UTF8_STRING")
	if err1 != nil || err2 != nil {
		return
	}
	xproto.ChangeProperty(x, xproto.PropModeReplace, w, netName, utf8, 8, uint32(len(name)), []byte(name))
}

func atom(c *xconn.Conn, name string) (xproto.Atom, error) {
	r, err := xproto.InternAtom(c.X, false, uint16(len(name)), name).Reply()
	if err != nil {
		return 0, err
	}
	return r.Atom, nil
}

// unicodeFont is the ISO 10646 encoding of the core font "fixed" (Debian:
// xfonts-base).
const unicodeFont = "-misc-fixed-medium-r-semicondensed--13-120-75-75-c-60-iso10646-1"

// ucs2 is s as the Unicode font's two-byte characters, "?" for control
// characters and those beyond the Basic Multilingual Plane, at most 255
// (ImageText16's limit).
func ucs2(s string) []xproto.Char2b {
	out := make([]xproto.Char2b, 0, len(s))
	for _, r := range s {
		if len(out) == 255 {
			break
		}
		if r < 0x20 || (r >= 0x7f && r < 0xa0) || r > 0xffff || (r >= 0xd800 && r < 0xe000) {
			r = '?'
		}
		out = append(out, xproto.Char2b{Byte1: byte(r >> 8), Byte2: byte(r)})
	}
	return out
}

// latin1 is s in Latin-1 (the core font's encoding), "?" for the rest,
// at most 255 bytes (ImageText8's limit).
func latin1(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if len(out) == 255 {
			break
		}
		if r < 0x20 || r > 0xff || (r >= 0x7f && r < 0xa0) {
			r = '?'
		}
		out = append(out, byte(r))
	}
	return string(out)
}

func (b *banner) draw(w xproto.Window) {
	x := b.c.X
	switch w {
	case b.win:
		if b.wide {
			xproto.ImageText16(x, byte(len(b.text16)), xproto.Drawable(b.win), b.gcBar, pad, int16(pad/2+pad/2+b.ascent), b.text16)
		} else {
			xproto.ImageText8(x, byte(len(b.text)), xproto.Drawable(b.win), b.gcBar, pad, int16(pad/2+pad/2+b.ascent), b.text)
		}
	case b.btn:
		// A frame inside the button, then the label.
		for i := range border {
			xproto.PolyRectangle(x, xproto.Drawable(b.btn), b.gcBtn, []xproto.Rectangle{{X: int16(i), Y: int16(i),
				Width: uint16(b.btnW - 1 - 2*i), Height: uint16(b.btnH - 1 - 2*i)}})
		}
		xproto.ImageText8(x, byte(len(b.label)), xproto.Drawable(b.btn), b.gcBtn, pad, int16(pad/2+b.ascent), b.label)
	}
}

func (b *banner) loop() {
	defer close(b.done)
	pressed := false
	for {
		ev, xerr := b.c.X.WaitForEvent()
		if ev == nil && xerr == nil {
			return // closed
		}
		if xerr != nil {
			b.log.Debug("banner: X error", "err", xerr)
			continue
		}
		switch e := ev.(type) {
		case xproto.ExposeEvent:
			if e.Count == 0 {
				b.draw(e.Window)
			}
		case xproto.VisibilityNotifyEvent:
			// Stay on top of whatever covers the bar.
			if e.Window == b.win && e.State != xproto.VisibilityUnobscured {
				xproto.ConfigureWindow(b.c.X, b.win, xproto.ConfigWindowStackMode, []uint32{xproto.StackModeAbove})
			}
		case xproto.ButtonPressEvent:
			if e.Event == b.btn && e.Detail == xproto.ButtonIndex1 {
				pressed = true
			}
		case xproto.ButtonReleaseEvent:
			// A click: pressed and released on the button.
			if pressed && e.Event == b.btn && e.Detail == xproto.ButtonIndex1 &&
				e.EventX >= 0 && int(e.EventX) < b.btnW && e.EventY >= 0 && int(e.EventY) < b.btnH {
				b.log.Info("banner: the user clicked End session")
				b.endOnce.Do(b.onEnd)
			}
			pressed = false
		}
	}
}

// Close removes the banner: the window is gone from the screen when Close
// returns.
func (b *banner) Close() error {
	b.closeOnce.Do(func() {
		xproto.DestroyWindow(b.c.X, b.win)
		// A round trip: the server destroyed the window.
		xproto.GetInputFocus(b.c.X).Reply()
		b.c.Close()
		<-b.done
	})
	return nil
}
