package clipboard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xfixes"
	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop/internal/xconn"
)

// Attribute keys of the log records.
const (
	logKeyDisplay = "display"
	logKeyError   = "error"
	logKeyBytes   = "bytes"
	logKeyTarget  = "target"
)

const (
	// maxChunk is the most bytes one ChangeProperty carries; larger texts
	// go through INCR. It stays well under the core protocol's 256 KiB
	// request limit (xgb does not use BIG-REQUESTS).
	maxChunk = 64 << 10
	// maxSends bounds the INCR transfers served at once; the oldest is
	// dropped for a new one (its requestor has probably gone).
	maxSends = 16
	// sendTimeout is how long an INCR transfer may wait for its requestor
	// to delete the property before it is dropped.
	sendTimeout = 30 * time.Second
	// propertyName is the hidden window's property conversions go to.
	propertyName = "DESKSIDE_CLIPBOARD"
)

var _ Clipboard = (*x11Clipboard)(nil)

// atoms are the atoms the clipboard protocol uses.
type atoms struct {
	clipboard, utf8String, text, targets, incr, timestamp, multiple, property xproto.Atom
}

// x11Clipboard is the X11 Clipboard; see the package documentation.
type x11Clipboard struct {
	logger   *slog.Logger
	conn     *xconn.Conn
	x        *xgb.Conn
	win      xproto.Window
	a        atoms
	chunk    int
	onChange func(string)
	done     chan struct{} // closed when the event loop ends

	mu      sync.Mutex // guards the fields below
	closed  bool
	text    string // served while owned
	owned   bool
	ownedAt xproto.Timestamp // when the server made us owner; 0 unknown

	// Used by the event loop only.
	read  *reading
	sends []*incrSend
}

// reading is a conversion of another client's selection in progress.
type reading struct {
	time      xproto.Timestamp
	target    xproto.Atom
	incr      bool
	buf       []byte
	typ       xproto.Atom
	truncated bool // longer than MaxText
	notText   bool // a chunk was not 8-bit data
}

// incrSend is an INCR transfer to a requestor in progress.
type incrSend struct {
	requestor xproto.Window
	property  xproto.Atom
	typ       xproto.Atom
	data      []byte
	off       int
	finished  bool // the zero-length end marker was written
	started   time.Time
}

// Open connects to the display and starts watching the clipboard.
func Open(cfg Config) (_ Clipboard, err error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	conn, err := xconn.Dial(cfg.Display, cfg.Logger)
	if err != nil {
		return nil, err // ErrWaylandNotSupported or wrapping ErrNoDisplay
	}
	c := &x11Clipboard{
		logger:   cfg.Logger,
		conn:     conn,
		x:        conn.X,
		onChange: cfg.OnChange,
		done:     make(chan struct{}),
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
	if !conn.Has(xconn.ExtXFixes) {
		return nil, fmt.Errorf("%w: X server %s has no XFIXES extension", ErrNotSupported, conn.Display)
	}
	if v, err := xfixes.QueryVersion(c.x, 5, 0).Reply(); err != nil {
		return nil, fmt.Errorf("clipboard: XFIXES version: %w", err)
	} else if v.MajorVersion < 1 {
		return nil, fmt.Errorf("%w: XFIXES %d.%d has no selection events", ErrNotSupported, v.MajorVersion, v.MinorVersion)
	}
	if c.a, err = internAtoms(c.x); err != nil {
		return nil, err
	}
	c.chunk = min(maxChunk, int(conn.Setup.MaximumRequestLength)*4-64)

	if c.win, err = xproto.NewWindowId(c.x); err != nil {
		return nil, fmt.Errorf("clipboard: window id: %w", err)
	}
	if err := xproto.CreateWindowChecked(c.x, 0, c.win, conn.Root, -10, -10, 1, 1, 0,
		xproto.WindowClassInputOnly, 0, xproto.CwOverrideRedirect|xproto.CwEventMask,
		[]uint32{1, xproto.EventMaskPropertyChange}).Check(); err != nil {
		return nil, fmt.Errorf("clipboard: create window: %w", err)
	}
	mask := uint32(xfixes.SelectionEventMaskSetSelectionOwner | xfixes.SelectionEventMaskSelectionWindowDestroy |
		xfixes.SelectionEventMaskSelectionClientClose)
	if err := xfixes.SelectSelectionInputChecked(c.x, c.win, c.a.clipboard, mask).Check(); err != nil {
		return nil, fmt.Errorf("clipboard: select selection events: %w", err)
	}
	go c.loop()
	started = true
	c.logger.Debug("clipboard: watching the X clipboard", logKeyDisplay, conn.Display)
	return c, nil
}

func internAtoms(x *xgb.Conn) (atoms, error) {
	names := []string{"CLIPBOARD", "UTF8_STRING", "TEXT", "TARGETS", "INCR", "TIMESTAMP", "MULTIPLE", propertyName}
	cookies := make([]xproto.InternAtomCookie, len(names))
	for i, n := range names {
		cookies[i] = xproto.InternAtom(x, false, uint16(len(n)), n)
	}
	got := make([]xproto.Atom, len(names))
	for i, ck := range cookies {
		r, err := ck.Reply()
		if err != nil {
			return atoms{}, fmt.Errorf("clipboard: intern atom %s: %w", names[i], err)
		}
		got[i] = r.Atom
	}
	return atoms{clipboard: got[0], utf8String: got[1], text: got[2], targets: got[3], incr: got[4],
		timestamp: got[5], multiple: got[6], property: got[7]}, nil
}

// SetText makes the Clipboard the CLIPBOARD owner with text.
func (c *x11Clipboard) SetText(text string) error {
	if len(text) > MaxText {
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, len(text), MaxText)
	}
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.text, c.owned, c.ownedAt = text, true, 0
	c.mu.Unlock()
	if err := xproto.SetSelectionOwnerChecked(c.x, c.win, c.a.clipboard, xproto.TimeCurrentTime).Check(); err != nil {
		return c.connErr("set selection owner", err)
	}
	r, err := xproto.GetSelectionOwner(c.x, c.a.clipboard).Reply()
	if err != nil {
		return c.connErr("get selection owner", err)
	}
	if r.Owner != c.win {
		c.mu.Lock()
		c.owned = false
		c.mu.Unlock()
		return fmt.Errorf("%w: the owner is window %#x", ErrNotOwner, r.Owner)
	}
	return nil
}

func (c *x11Clipboard) connErr(what string, err error) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("clipboard: %s: display connection lost: %w", what, err)
	}
	return fmt.Errorf("clipboard: %s: %w", what, err)
}

// Close closes the connection (destroying the window, giving up
// ownership) and waits for the event loop to end.
func (c *x11Clipboard) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.conn.Close()
	<-c.done
	return nil
}

// loop handles the connection's events until it closes.
func (c *x11Clipboard) loop() {
	defer close(c.done)
	for {
		ev, xerr := c.x.WaitForEvent()
		if ev == nil && xerr == nil {
			return
		}
		if xerr != nil {
			// Typically BadWindow: a requestor went away mid-transfer.
			c.logger.Debug("clipboard: X error", logKeyError, xerr)
			continue
		}
		switch e := ev.(type) {
		case xfixes.SelectionNotifyEvent:
			c.ownerChanged(e)
		case xproto.SelectionNotifyEvent:
			c.converted(e)
		case xproto.PropertyNotifyEvent:
			c.propertyChanged(e)
		case xproto.SelectionRequestEvent:
			c.serve(e)
		case xproto.SelectionClearEvent:
			c.cleared(e)
		}
	}
}

// ownerChanged starts reading the text of a new owner.
func (c *x11Clipboard) ownerChanged(e xfixes.SelectionNotifyEvent) {
	if e.Selection != c.a.clipboard || e.Subtype != xfixes.SelectionEventSetSelectionOwner {
		return
	}
	if e.Owner == c.win {
		c.mu.Lock()
		c.ownedAt = e.SelectionTimestamp
		c.mu.Unlock()
		return
	}
	if e.Owner == xproto.WindowNone {
		return
	}
	// A read still in progress is abandoned for the newer owner.
	c.read = &reading{time: e.Timestamp, target: c.a.utf8String}
	c.convert()
}

func (c *x11Clipboard) convert() {
	xproto.DeleteProperty(c.x, c.win, c.a.property)
	xproto.ConvertSelection(c.x, c.win, c.a.clipboard, c.read.target, c.a.property, c.read.time)
}

// converted handles the owner's answer to ConvertSelection.
func (c *x11Clipboard) converted(e xproto.SelectionNotifyEvent) {
	r := c.read
	if r == nil || r.incr || e.Requestor != c.win || e.Selection != c.a.clipboard || e.Target != r.target ||
		(e.Time != xproto.TimeCurrentTime && e.Time != r.time) {
		return
	}
	if e.Property == xproto.AtomNone {
		if r.target == c.a.utf8String {
			r.target = xproto.AtomString // an old owner: ask for Latin-1
			c.convert()
			return
		}
		c.read = nil
		c.logger.Debug("clipboard: the owner refused to convert the clipboard to text")
		return
	}
	reply, err := xproto.GetProperty(c.x, false, c.win, e.Property, xproto.GetPropertyTypeAny, 0, MaxText/4+1).Reply()
	if err != nil {
		c.read = nil
		c.logger.Debug("clipboard: read the converted clipboard", logKeyError, err)
		return
	}
	xproto.DeleteProperty(c.x, c.win, e.Property)
	if reply.Type == c.a.incr {
		// Deleting the INCR property asks the owner for the first chunk.
		r.incr = true
		return
	}
	r.typ = reply.Type
	c.appendChunk(r, reply)
	c.finish()
}

// propertyChanged handles INCR chunks in both directions.
func (c *x11Clipboard) propertyChanged(e xproto.PropertyNotifyEvent) {
	if e.Window == c.win {
		r := c.read
		if r == nil || !r.incr || e.Atom != c.a.property || e.State != xproto.PropertyNewValue {
			return
		}
		reply, err := xproto.GetProperty(c.x, false, c.win, c.a.property, xproto.GetPropertyTypeAny, 0, MaxText/4+1).Reply()
		if err != nil {
			c.read = nil
			c.logger.Debug("clipboard: read an INCR chunk", logKeyError, err)
			return
		}
		xproto.DeleteProperty(c.x, c.win, c.a.property) // asks for the next chunk
		if reply.Format == 0 && reply.Type == xproto.AtomNone {
			return // the property was already gone
		}
		if r.typ == 0 {
			r.typ = reply.Type
		}
		if reply.ValueLen == 0 {
			c.finish() // the zero-length chunk ends the transfer
			return
		}
		c.appendChunk(r, reply)
		return
	}
	if e.State != xproto.PropertyDelete {
		return
	}
	for _, s := range c.sends {
		if s.requestor == e.Window && s.property == e.Atom {
			c.sendNext(s)
			return
		}
	}
}

func (c *x11Clipboard) appendChunk(r *reading, reply *xproto.GetPropertyReply) {
	if reply.Format != 8 {
		r.notText = true
		return
	}
	room := MaxText - len(r.buf)
	v := reply.Value
	if len(v) > room || reply.BytesAfter > 0 {
		r.truncated = true
		v = v[:min(len(v), room)]
	}
	r.buf = append(r.buf, v...)
}

// finish decodes what was read and reports it.
func (c *x11Clipboard) finish() {
	r := c.read
	c.read = nil
	if len(r.buf) == 0 && (r.notText || r.typ == xproto.AtomNone) {
		c.logger.Debug("clipboard: the owner sent no text")
		return
	}
	// Anything but STRING is taken as UTF-8: some owners label it
	// C_STRING or text/plain.
	var text string
	if r.typ == xproto.AtomString {
		text = fromLatin1(r.buf)
	} else {
		text = strings.ToValidUTF8(string(r.buf), "\uFFFD")
	}
	if len(text) > MaxText || r.truncated {
		text = Truncate(text, MaxText)
		c.logger.Info("clipboard: text cut to the size limit", logKeyBytes, MaxText)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if !closed {
		c.onChange(text)
	}
}

// cleared handles the loss of ownership.
func (c *x11Clipboard) cleared(e xproto.SelectionClearEvent) {
	if e.Selection != c.a.clipboard || e.Owner != c.win {
		return
	}
	// The event may predate a SetText that made us owner again.
	if r, err := xproto.GetSelectionOwner(c.x, c.a.clipboard).Reply(); err == nil && r.Owner == c.win {
		return
	}
	c.mu.Lock()
	c.owned, c.text = false, ""
	c.mu.Unlock()
}

// serve answers another client's SelectionRequest.
func (c *x11Clipboard) serve(e xproto.SelectionRequestEvent) {
	prop := e.Property
	if prop == xproto.AtomNone {
		prop = e.Target // an obsolete client (ICCCM 2.2)
	}
	c.mu.Lock()
	text, owned, at := c.text, c.owned, c.ownedAt
	c.mu.Unlock()
	ok := owned && e.Owner == c.win && e.Selection == c.a.clipboard &&
		(e.Time == xproto.TimeCurrentTime || at == 0 || e.Time >= at)
	if ok {
		switch e.Target {
		case c.a.targets:
			targets := []xproto.Atom{c.a.targets, c.a.timestamp, c.a.utf8String, c.a.text, xproto.AtomString}
			buf := make([]byte, 4*len(targets))
			for i, t := range targets {
				binary.LittleEndian.PutUint32(buf[4*i:], uint32(t))
			}
			c.changeProperty(xproto.PropModeReplace, e.Requestor, prop, xproto.AtomAtom, 32, buf)
		case c.a.timestamp:
			buf := binary.LittleEndian.AppendUint32(nil, uint32(at))
			c.changeProperty(xproto.PropModeReplace, e.Requestor, prop, xproto.AtomInteger, 32, buf)
		case c.a.utf8String, c.a.text:
			ok = c.sendData(e.Requestor, prop, c.a.utf8String, []byte(text))
		case xproto.AtomString:
			ok = c.sendData(e.Requestor, prop, xproto.AtomString, toLatin1(text))
		default:
			ok = false // MULTIPLE, images, …
			c.logger.Debug("clipboard: refused a conversion", logKeyTarget, uint32(e.Target))
		}
	}
	if !ok {
		prop = xproto.AtomNone
	}
	notify := xproto.SelectionNotifyEvent{Time: e.Time, Requestor: e.Requestor, Selection: e.Selection, Target: e.Target, Property: prop}
	xproto.SendEvent(c.x, false, e.Requestor, xproto.EventMaskNoEvent, string(notify.Bytes()))
}

// changeProperty writes data (format 8 or 32; 32-bit items in the
// connection's byte order, which xgb makes little-endian) to a window.
func (c *x11Clipboard) changeProperty(mode byte, w xproto.Window, prop, typ xproto.Atom, format byte, data []byte) {
	n := len(data)
	if format == 32 {
		n /= 4
	}
	xproto.ChangeProperty(c.x, mode, w, prop, typ, format, uint32(n), data)
}

// sendData writes the text to the requestor, in one piece or by INCR.
func (c *x11Clipboard) sendData(w xproto.Window, prop, typ xproto.Atom, data []byte) bool {
	if len(data) <= c.chunk {
		c.changeProperty(xproto.PropModeReplace, w, prop, typ, 8, data)
		return true
	}
	now := time.Now()
	kept := c.sends[:0]
	for _, s := range c.sends {
		switch {
		case s.requestor == w && s.property == prop:
			// The requestor asks again on the same property: restart.
		case now.Sub(s.started) > sendTimeout:
			c.logger.Debug("clipboard: INCR transfer timed out", logKeyBytes, s.off)
		default:
			kept = append(kept, s)
			continue
		}
		c.unwatch(s.requestor, kept)
	}
	c.sends = kept
	if len(c.sends) >= maxSends {
		c.logger.Debug("clipboard: too many INCR transfers; dropping the oldest")
		old := c.sends[0]
		c.sends = append(c.sends[:0], c.sends[1:]...)
		c.unwatch(old.requestor, c.sends)
	}
	// Property deletions on the requestor's window drive the transfer.
	xproto.ChangeWindowAttributes(c.x, w, xproto.CwEventMask, []uint32{xproto.EventMaskPropertyChange})
	c.changeProperty(xproto.PropModeReplace, w, prop, c.a.incr, 32, binary.LittleEndian.AppendUint32(nil, uint32(len(data))))
	c.sends = append(c.sends, &incrSend{requestor: w, property: prop, typ: typ, data: data, started: now})
	return true
}

// sendNext writes the next INCR chunk after the requestor deleted the
// last one; after the zero-length end marker is deleted the transfer is
// over.
func (c *x11Clipboard) sendNext(s *incrSend) {
	if s.finished {
		c.sends = deleteSend(c.sends, s)
		c.unwatch(s.requestor, c.sends)
		return
	}
	end := min(len(s.data), s.off+c.chunk)
	c.changeProperty(xproto.PropModeAppend, s.requestor, s.property, s.typ, 8, s.data[s.off:end])
	if s.off == end {
		s.finished = true
	}
	s.off = end
}

// unwatch stops PropertyNotify events from a requestor's window unless
// another transfer still uses it.
func (c *x11Clipboard) unwatch(w xproto.Window, sends []*incrSend) {
	for _, s := range sends {
		if s.requestor == w {
			return
		}
	}
	xproto.ChangeWindowAttributes(c.x, w, xproto.CwEventMask, []uint32{xproto.EventMaskNoEvent})
}

func deleteSend(sends []*incrSend, s *incrSend) []*incrSend {
	for i, o := range sends {
		if o == s {
			return append(sends[:i], sends[i+1:]...)
		}
	}
	return sends
}

// toLatin1 encodes text as ISO 8859-1, '?' for what it cannot hold.
func toLatin1(text string) []byte {
	b := make([]byte, 0, len(text))
	for _, r := range text {
		if r > 0xff {
			r = '?'
		}
		b = append(b, byte(r))
	}
	return b
}

// fromLatin1 decodes ISO 8859-1.
func fromLatin1(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}
