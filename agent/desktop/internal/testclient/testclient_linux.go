package testclient

import (
	"errors"
	"fmt"
	"image/color"
	"log/slog"
	"math/bits"
	"strings"
	"sync"
	"time"

	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop/internal/xconn"
)

// Kind is the kind of an input event.
type Kind int

// Event kinds.
const (
	KeyPress Kind = iota + 1
	KeyRelease
	ButtonPress
	ButtonRelease
	Motion
)

func (k Kind) String() string {
	switch k {
	case KeyPress:
		return "KeyPress"
	case KeyRelease:
		return "KeyRelease"
	case ButtonPress:
		return "ButtonPress"
	case ButtonRelease:
		return "ButtonRelease"
	case Motion:
		return "Motion"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Event is one input event the client's window received.
type Event struct {
	Kind Kind
	// X and Y are relative to the window, which starts at the screen's
	// origin; RootX and RootY are screen coordinates.
	X, Y, RootX, RootY int
	// Button is the button of ButtonPress and ButtonRelease events.
	Button int
	// Keycode is the key of KeyPress and KeyRelease events; Keysym is what
	// it means under the keyboard mapping and the modifier State, and Text
	// the character it types ("" for keys such as Shift or Return).
	Keycode int
	Keysym  uint32
	Text    string
	// State is the modifier and button mask just before the event.
	State uint16
}

func (e Event) String() string {
	switch e.Kind {
	case KeyPress, KeyRelease:
		return fmt.Sprintf("%v keycode=%d keysym=%#x text=%q state=%#x", e.Kind, e.Keycode, e.Keysym, e.Text, e.State)
	case ButtonPress, ButtonRelease:
		return fmt.Sprintf("%v button=%d at (%d,%d)", e.Kind, e.Button, e.X, e.Y)
	}
	return fmt.Sprintf("%v at (%d,%d)", e.Kind, e.X, e.Y)
}

// Options configure the picture.
type Options struct {
	// Quadrants are the colours of the top-left, top-right, bottom-left
	// and bottom-right quarters; the zero value means red, green, blue and
	// white.
	Quadrants [4]color.RGBA
	// Logger receives debug messages; nil discards them.
	Logger *slog.Logger
}

// DefaultQuadrants are the colours Start paints.
var DefaultQuadrants = [4]color.RGBA{
	{R: 0xff, A: 0xff},
	{G: 0xff, A: 0xff},
	{B: 0xff, A: 0xff},
	{R: 0xff, G: 0xff, B: 0xff, A: 0xff},
}

// ErrTimeout is returned by WaitFor when the condition did not hold in time.
var ErrTimeout = errors.New("testclient: timed out waiting for events")

// exposeTimeout bounds how long Start waits for its window to be shown.
const exposeTimeout = 10 * time.Second

// Client is a running test client.
type Client struct {
	conn   *xconn.Conn
	logger *slog.Logger
	win    xproto.Window
	gc     xproto.Gcontext
	width  int
	height int
	masks  [3]uint32 // red, green, blue masks of the root visual

	drawMu  sync.Mutex // serialises painting
	mu      sync.Mutex // guards the fields below
	picture [4]color.RGBA
	events  []Event
	notify  chan struct{} // closed and replaced when events change
	keymap  keymap

	exposed   chan struct{} // closed after the first Expose is painted
	done      chan struct{} // closed when the event loop ends
	closeOnce sync.Once
}

type keymap struct {
	min  int
	per  int
	syms []xproto.Keysym
}

// Start opens a client with the default picture on display.
func Start(display string) (*Client, error) { return StartWith(display, Options{}) }

// StartWith opens a client with the picture opts describe on display.
func StartWith(display string, opts Options) (_ *Client, err error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	conn, err := xconn.Dial(display, logger)
	if err != nil {
		return nil, err
	}
	c := &Client{
		conn:    conn,
		logger:  logger,
		width:   int(conn.Screen.WidthInPixels),
		height:  int(conn.Screen.HeightInPixels),
		picture: opts.Quadrants,
		notify:  make(chan struct{}),
		exposed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if c.picture == ([4]color.RGBA{}) {
		c.picture = DefaultQuadrants
	}
	started := false
	defer func() {
		if err != nil {
			if !started {
				close(c.done)
			}
			c.Close()
		}
	}()
	if err := c.findMasks(); err != nil {
		return nil, err
	}
	if err := c.loadKeymap(); err != nil {
		return nil, err
	}

	x, scr := conn.X, conn.Screen
	if c.win, err = xproto.NewWindowId(x); err != nil {
		return nil, err
	}
	mask := uint32(xproto.CwBackPixel | xproto.CwOverrideRedirect | xproto.CwEventMask)
	values := []uint32{
		scr.BlackPixel,
		1, // override-redirect: no window manager gets a say
		xproto.EventMaskExposure | xproto.EventMaskKeyPress | xproto.EventMaskKeyRelease |
			xproto.EventMaskButtonPress | xproto.EventMaskButtonRelease | xproto.EventMaskPointerMotion,
	}
	if err := xproto.CreateWindowChecked(x, scr.RootDepth, c.win, scr.Root, 0, 0,
		uint16(c.width), uint16(c.height), 0, xproto.WindowClassInputOutput, scr.RootVisual, mask, values).Check(); err != nil {
		return nil, fmt.Errorf("testclient: create window: %w", err)
	}
	if c.gc, err = xproto.NewGcontextId(x); err != nil {
		return nil, err
	}
	if err := xproto.CreateGCChecked(x, c.gc, xproto.Drawable(c.win), 0, nil).Check(); err != nil {
		return nil, fmt.Errorf("testclient: create GC: %w", err)
	}

	go c.loop()
	started = true

	if err := xproto.MapWindowChecked(x, c.win).Check(); err != nil {
		return nil, fmt.Errorf("testclient: map window: %w", err)
	}
	select {
	case <-c.exposed:
	case <-c.done:
		return nil, errors.New("testclient: connection closed before the window was shown")
	case <-time.After(exposeTimeout):
		return nil, errors.New("testclient: window not exposed in time")
	}
	if err := xproto.SetInputFocusChecked(x, xproto.InputFocusPointerRoot, c.win, xproto.TimeCurrentTime).Check(); err != nil {
		return nil, fmt.Errorf("testclient: set input focus: %w", err)
	}
	return c, nil
}

// Size returns the window's size, which is the screen's.
func (c *Client) Size() (width, height int) { return c.width, c.height }

// Window returns the client's window id.
func (c *Client) Window() uint32 { return uint32(c.win) }

// SetColor paints the whole window in one colour and returns once the
// server has done so.
func (c *Client) SetColor(r, g, b uint8) error {
	col := color.RGBA{R: r, G: g, B: b, A: 0xff}
	return c.SetQuadrants([4]color.RGBA{col, col, col, col})
}

// SetQuadrants paints the four quarters of the window and returns once
// the server has done so.
func (c *Client) SetQuadrants(q [4]color.RGBA) error {
	c.mu.Lock()
	c.picture = q
	c.mu.Unlock()
	return c.paint()
}

// FillRect paints one rectangle (window coordinates) and returns once the
// server has done so. A later repaint (SetColor, an Expose) covers it.
func (c *Client) FillRect(x, y, w, h int, col color.RGBA) error {
	c.drawMu.Lock()
	defer c.drawMu.Unlock()
	xc := c.conn.X
	xproto.ChangeGC(xc, c.gc, xproto.GcForeground, []uint32{c.pixel(col)})
	xproto.PolyFillRectangle(xc, xproto.Drawable(c.win), c.gc,
		[]xproto.Rectangle{{X: int16(x), Y: int16(y), Width: uint16(w), Height: uint16(h)}})
	if _, err := xproto.GetInputFocus(xc).Reply(); err != nil {
		return fmt.Errorf("testclient: fill: %w", err)
	}
	return nil
}

// paint draws the current picture and waits for the server to finish.
func (c *Client) paint() error {
	c.drawMu.Lock()
	defer c.drawMu.Unlock()
	c.mu.Lock()
	pic := c.picture
	c.mu.Unlock()
	x := c.conn.X
	hw, hh := c.width/2, c.height/2
	rects := [4]xproto.Rectangle{
		{X: 0, Y: 0, Width: uint16(hw), Height: uint16(hh)},
		{X: int16(hw), Y: 0, Width: uint16(c.width - hw), Height: uint16(hh)},
		{X: 0, Y: int16(hh), Width: uint16(hw), Height: uint16(c.height - hh)},
		{X: int16(hw), Y: int16(hh), Width: uint16(c.width - hw), Height: uint16(c.height - hh)},
	}
	for i, col := range pic {
		xproto.ChangeGC(x, c.gc, xproto.GcForeground, []uint32{c.pixel(col)})
		xproto.PolyFillRectangle(x, xproto.Drawable(c.win), c.gc, rects[i:i+1])
	}
	// A round trip: every request above has been carried out when its
	// reply arrives.
	if _, err := xproto.GetInputFocus(x).Reply(); err != nil {
		return fmt.Errorf("testclient: paint: %w", err)
	}
	return nil
}

// Events returns a copy of the events received so far.
func (c *Client) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// ResetEvents forgets the events received so far.
func (c *Client) ResetEvents() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = nil
}

// WaitFor returns nil as soon as cond holds for the events received so
// far, and an error wrapping ErrTimeout (listing them) when it did not
// within timeout. cond is checked at once and after each new event.
func (c *Client) WaitFor(cond func([]Event) bool, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		evs := append([]Event(nil), c.events...)
		notify := c.notify
		c.mu.Unlock()
		if cond(evs) {
			return nil
		}
		select {
		case <-notify:
		case <-c.done:
			return errors.New("testclient: connection closed")
		case <-timer.C:
			return fmt.Errorf("%w after %v; received %d events: %s", ErrTimeout, timeout, len(evs), summary(evs))
		}
	}
}

func summary(evs []Event) string {
	const max = 40
	var b strings.Builder
	for i, e := range evs {
		if i == max {
			fmt.Fprintf(&b, "; … %d more", len(evs)-max)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.String())
	}
	return b.String()
}

// Close closes the window and the connection and waits for the event
// loop to end. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.conn.Close() // destroys the window with the connection
		<-c.done
	})
	return nil
}

// loop records input events until the connection closes.
func (c *Client) loop() {
	defer close(c.done)
	exposed := false
	for {
		ev, xerr := c.conn.X.WaitForEvent()
		if ev == nil && xerr == nil {
			return
		}
		if xerr != nil {
			c.logger.Debug("testclient: X error", "error", xerr)
			continue
		}
		switch e := ev.(type) {
		case xproto.ExposeEvent:
			if e.Count == 0 {
				if err := c.paint(); err != nil {
					c.logger.Debug("testclient: repaint", "error", err)
				}
				if !exposed {
					exposed = true
					close(c.exposed)
				}
			}
		case xproto.MappingNotifyEvent:
			if e.Request == xproto.MappingKeyboard {
				if err := c.loadKeymap(); err != nil {
					c.logger.Debug("testclient: reload keymap", "error", err)
				}
			}
		case xproto.KeyPressEvent:
			c.record(c.keyEvent(KeyPress, e.Detail, e.State, e.EventX, e.EventY, e.RootX, e.RootY))
		case xproto.KeyReleaseEvent:
			c.record(c.keyEvent(KeyRelease, e.Detail, e.State, e.EventX, e.EventY, e.RootX, e.RootY))
		case xproto.ButtonPressEvent:
			c.record(Event{Kind: ButtonPress, Button: int(e.Detail), X: int(e.EventX), Y: int(e.EventY),
				RootX: int(e.RootX), RootY: int(e.RootY), State: e.State})
		case xproto.ButtonReleaseEvent:
			c.record(Event{Kind: ButtonRelease, Button: int(e.Detail), X: int(e.EventX), Y: int(e.EventY),
				RootX: int(e.RootX), RootY: int(e.RootY), State: e.State})
		case xproto.MotionNotifyEvent:
			c.record(Event{Kind: Motion, X: int(e.EventX), Y: int(e.EventY),
				RootX: int(e.RootX), RootY: int(e.RootY), State: e.State})
		}
	}
}

func (c *Client) record(e Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
	close(c.notify)
	c.notify = make(chan struct{})
}

func (c *Client) keyEvent(kind Kind, code xproto.Keycode, state uint16, x, y, rx, ry int16) Event {
	c.mu.Lock()
	ks := c.keymap.lookup(int(code), state)
	c.mu.Unlock()
	return Event{Kind: kind, Keycode: int(code), Keysym: uint32(ks), Text: keysymText(ks),
		State: state, X: int(x), Y: int(y), RootX: int(rx), RootY: int(ry)}
}

func (c *Client) loadKeymap() error {
	setup := c.conn.Setup
	count := int(setup.MaxKeycode) - int(setup.MinKeycode) + 1
	reply, err := xproto.GetKeyboardMapping(c.conn.X, setup.MinKeycode, byte(count)).Reply()
	if err != nil {
		return fmt.Errorf("testclient: keyboard mapping: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keymap = keymap{min: int(setup.MinKeycode), per: int(reply.KeysymsPerKeycode), syms: reply.Keysyms}
	return nil
}

// Modifier masks of the core protocol.
const (
	shiftMask = xproto.ModMaskShift
	lockMask  = xproto.ModMaskLock
	numMask   = xproto.ModMask2 // Num_Lock on every common layout
)

// lookup applies the core protocol's rules for group 1: the second keysym
// with Shift (or with Caps Lock for letters), keypad keys swapped by Num
// Lock.
func (m keymap) lookup(code int, state uint16) xproto.Keysym {
	i := (code - m.min) * m.per
	if m.per == 0 || i < 0 || i+m.per > len(m.syms) {
		return 0
	}
	ks0 := m.syms[i]
	ks1 := xproto.Keysym(0)
	if m.per > 1 {
		ks1 = m.syms[i+1]
	}
	if ks1 == 0 {
		ks1 = upper(ks0)
	}
	shift := state&shiftMask != 0
	if isKeypad(ks1) && state&numMask != 0 {
		if shift {
			return ks0
		}
		return ks1
	}
	if state&lockMask != 0 && ks0 != upper(ks0) {
		shift = !shift
	}
	if shift {
		return ks1
	}
	return ks0
}

func isKeypad(ks xproto.Keysym) bool { return ks >= 0xff80 && ks <= 0xffbd }

func upper(ks xproto.Keysym) xproto.Keysym {
	if ks >= 'a' && ks <= 'z' {
		return ks - 'a' + 'A'
	}
	return ks
}

// keysymText is the character a keysym types: Latin-1 keysyms are their
// code point, Unicode keysyms are 0x01000000 plus theirs, keypad digits
// and operators type what they show.
func keysymText(ks xproto.Keysym) string {
	switch {
	case ks >= 0x20 && ks <= 0x7e, ks >= 0xa0 && ks <= 0xff:
		return string(rune(ks))
	case ks >= 0x01000100 && ks <= 0x0110ffff:
		return string(rune(ks - 0x01000000))
	case ks >= 0xffb0 && ks <= 0xffb9: // KP_0 … KP_9
		return string(rune('0' + ks - 0xffb0))
	}
	switch ks {
	case 0xffaa:
		return "*"
	case 0xffab:
		return "+"
	case 0xffad:
		return "-"
	case 0xffae:
		return "."
	case 0xffaf:
		return "/"
	}
	return ""
}

// findMasks reads the colour masks of the root visual.
func (c *Client) findMasks() error {
	scr := c.conn.Screen
	for _, d := range scr.AllowedDepths {
		for _, v := range d.Visuals {
			if v.VisualId == scr.RootVisual {
				if v.Class != xproto.VisualClassTrueColor && v.Class != xproto.VisualClassDirectColor {
					return fmt.Errorf("testclient: root visual class %d is not TrueColor", v.Class)
				}
				c.masks = [3]uint32{v.RedMask, v.GreenMask, v.BlueMask}
				return nil
			}
		}
	}
	return errors.New("testclient: root visual not found")
}

// pixel converts a colour to a pixel value of the root visual.
func (c *Client) pixel(col color.RGBA) uint32 {
	var p uint32
	for i, v := range [3]uint8{col.R, col.G, col.B} {
		m := c.masks[i]
		if m == 0 {
			continue
		}
		shift := bits.TrailingZeros32(m)
		width := bits.OnesCount32(m)
		val := uint32(v)
		if width < 8 {
			val >>= 8 - width
		} else {
			val <<= width - 8
		}
		p |= (val << shift) & m
	}
	return p
}

// Text returns what the KeyPress events among evs typed.
func Text(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Kind == KeyPress {
			b.WriteString(e.Text)
		}
	}
	return b.String()
}

// HasButton reports whether evs hold an event of kind (ButtonPress or
// ButtonRelease) for button at window coordinates (x, y).
func HasButton(evs []Event, kind Kind, button, x, y int) bool {
	for _, e := range evs {
		if e.Kind == kind && e.Button == button && e.X == x && e.Y == y {
			return true
		}
	}
	return false
}

// HasKey reports whether evs hold an event of kind (KeyPress or
// KeyRelease) whose keysym is ks.
func HasKey(evs []Event, kind Kind, ks uint32) bool {
	for _, e := range evs {
		if e.Kind == kind && e.Keysym == ks {
			return true
		}
	}
	return false
}
