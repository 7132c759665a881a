package testclient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop/internal/xconn"
)

// ClipboardChunk is the most bytes a Clipboard writes at once: larger
// texts are served in INCR chunks of this size. It is small so that tests
// exercise INCR with modest texts.
const ClipboardChunk = 16 << 10

// Clipboard is a second X client that sets and reads the CLIPBOARD
// selection the way desktop programs do (ICCCM), independently of the
// agent's implementation: it serves TARGETS, UTF8_STRING and STRING, in
// INCR chunks above ClipboardChunk, and reads with ConvertSelection,
// following INCR.
type Clipboard struct {
	conn *xconn.Conn
	x    *xgb.Conn
	win  xproto.Window

	clipboard, utf8, targets, incr, prop xproto.Atom

	mu    sync.Mutex // guards text and owned
	text  string
	owned bool

	ev   chan xgb.Event // events for Get: SelectionNotify, own PropertyNotify
	done chan struct{}

	sends     map[sendKey]*send // INCR transfers in progress; loop only
	closeOnce sync.Once
}

type sendKey struct {
	w xproto.Window
	p xproto.Atom
}

// send is an INCR transfer: what is left to write.
type send struct {
	typ  xproto.Atom
	left []byte
	done bool // the empty end chunk was written
}

// OpenClipboard connects a Clipboard to display.
func OpenClipboard(display string) (_ *Clipboard, err error) {
	conn, err := xconn.Dial(display, nil)
	if err != nil {
		return nil, err
	}
	c := &Clipboard{conn: conn, x: conn.X, ev: make(chan xgb.Event, 4096), done: make(chan struct{}), sends: map[sendKey]*send{}}
	defer func() {
		if err != nil {
			close(c.done)
			c.Close()
		}
	}()
	for _, a := range []struct {
		name string
		dst  *xproto.Atom
	}{{"CLIPBOARD", &c.clipboard}, {"UTF8_STRING", &c.utf8}, {"TARGETS", &c.targets}, {"INCR", &c.incr}, {"TESTCLIENT_SEL", &c.prop}} {
		r, err := xproto.InternAtom(c.x, false, uint16(len(a.name)), a.name).Reply()
		if err != nil {
			return nil, err
		}
		*a.dst = r.Atom
	}
	if c.win, err = xproto.NewWindowId(c.x); err != nil {
		return nil, err
	}
	if err := xproto.CreateWindowChecked(c.x, 0, c.win, conn.Root, 0, 0, 1, 1, 0, xproto.WindowClassInputOnly, 0,
		xproto.CwEventMask, []uint32{xproto.EventMaskPropertyChange}).Check(); err != nil {
		return nil, fmt.Errorf("testclient: clipboard window: %w", err)
	}
	go c.loop()
	return c, nil
}

// Close closes the connection (giving up the selection) and waits for
// the event loop to end. It is idempotent.
func (c *Clipboard) Close() {
	c.closeOnce.Do(func() {
		c.conn.Close()
		<-c.done
	})
}

// Set makes the Clipboard the CLIPBOARD owner with text.
func (c *Clipboard) Set(text string) error {
	c.mu.Lock()
	c.text, c.owned = text, true
	c.mu.Unlock()
	if err := xproto.SetSelectionOwnerChecked(c.x, c.win, c.clipboard, xproto.TimeCurrentTime).Check(); err != nil {
		return err
	}
	r, err := xproto.GetSelectionOwner(c.x, c.clipboard).Reply()
	if err != nil {
		return err
	}
	if r.Owner != c.win {
		return fmt.Errorf("testclient: clipboard owner is %#x", r.Owner)
	}
	return nil
}

// Owned reports whether the Clipboard still owns CLIPBOARD.
func (c *Clipboard) Owned() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.owned
}

// Owner returns the window that owns CLIPBOARD (0: none).
func (c *Clipboard) Owner() (uint32, error) {
	r, err := xproto.GetSelectionOwner(c.x, c.clipboard).Reply()
	if err != nil {
		return 0, err
	}
	return uint32(r.Owner), nil
}

// Get reads CLIPBOARD as target ("UTF8_STRING", "STRING", "TARGETS", …;
// TARGETS comes back as the atom names joined by spaces) within timeout.
// Only one Get may run at a time.
func (c *Clipboard) Get(target string, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for drained := false; !drained; {
		select {
		case <-c.ev:
		default:
			drained = true
		}
	}
	tr, err := xproto.InternAtom(c.x, false, uint16(len(target)), target).Reply()
	if err != nil {
		return "", err
	}
	xproto.DeleteProperty(c.x, c.win, c.prop)
	xproto.ConvertSelection(c.x, c.win, c.clipboard, tr.Atom, c.prop, xproto.TimeCurrentTime)
	next := func() (xgb.Event, error) {
		select {
		case ev := <-c.ev:
			return ev, nil
		case <-c.done:
			return nil, errors.New("testclient: clipboard connection closed")
		case <-deadline.C:
			return nil, fmt.Errorf("testclient: no clipboard %s in %v", target, timeout)
		}
	}
	for {
		ev, err := next()
		if err != nil {
			return "", err
		}
		n, ok := ev.(xproto.SelectionNotifyEvent)
		if !ok {
			continue
		}
		if n.Property == xproto.AtomNone {
			return "", fmt.Errorf("testclient: the owner refused the conversion to %s", target)
		}
		break
	}
	r, err := xproto.GetProperty(c.x, true, c.win, c.prop, xproto.GetPropertyTypeAny, 0, 1<<24).Reply()
	if err != nil {
		return "", err
	}
	if r.Type == c.targets || r.Type == xproto.AtomAtom {
		return c.atomNames(r.Value)
	}
	if r.Type != c.incr {
		return string(r.Value), nil
	}
	var data []byte
	for {
		ev, err := next()
		if err != nil {
			return "", err
		}
		p, ok := ev.(xproto.PropertyNotifyEvent)
		if !ok || p.Atom != c.prop || p.State != xproto.PropertyNewValue {
			continue
		}
		r, err := xproto.GetProperty(c.x, true, c.win, c.prop, xproto.GetPropertyTypeAny, 0, 1<<24).Reply()
		if err != nil {
			return "", err
		}
		if r.ValueLen == 0 {
			return string(data), nil
		}
		data = append(data, r.Value...)
	}
}

func (c *Clipboard) atomNames(v []byte) (string, error) {
	var out string
	for i := 0; i+4 <= len(v); i += 4 {
		r, err := xproto.GetAtomName(c.x, xproto.Atom(binary.LittleEndian.Uint32(v[i:]))).Reply()
		if err != nil {
			return "", err
		}
		if out != "" {
			out += " "
		}
		out += r.Name
	}
	return out, nil
}

func (c *Clipboard) loop() {
	defer close(c.done)
	for {
		ev, xerr := c.x.WaitForEvent()
		if ev == nil && xerr == nil {
			return
		}
		if xerr != nil {
			continue
		}
		switch e := ev.(type) {
		case xproto.SelectionRequestEvent:
			c.serve(e)
		case xproto.SelectionClearEvent:
			c.mu.Lock()
			c.owned = false
			c.mu.Unlock()
		case xproto.SelectionNotifyEvent:
			c.forward(e)
		case xproto.PropertyNotifyEvent:
			if e.Window == c.win {
				c.forward(e)
			} else if e.State == xproto.PropertyDelete {
				c.sendNext(sendKey{e.Window, e.Atom})
			}
		}
	}
}

func (c *Clipboard) forward(ev xgb.Event) {
	select {
	case c.ev <- ev:
	default:
	}
}

func (c *Clipboard) serve(e xproto.SelectionRequestEvent) {
	prop := e.Property
	if prop == xproto.AtomNone {
		prop = e.Target
	}
	c.mu.Lock()
	text, owned := c.text, c.owned
	c.mu.Unlock()
	var data []byte
	typ := e.Target
	switch {
	case !owned || e.Selection != c.clipboard:
		prop = xproto.AtomNone
	case e.Target == c.targets:
		for _, a := range []xproto.Atom{c.targets, c.utf8, xproto.AtomString} {
			data = binary.LittleEndian.AppendUint32(data, uint32(a))
		}
		xproto.ChangeProperty(c.x, xproto.PropModeReplace, e.Requestor, prop, xproto.AtomAtom, 32, uint32(len(data)/4), data)
	case e.Target == c.utf8 || e.Target == xproto.AtomString:
		data = []byte(text)
		if e.Target == xproto.AtomString {
			data = data[:0:0]
			for _, r := range text {
				if r > 0xff {
					r = '?'
				}
				data = append(data, byte(r))
			}
		}
		if len(data) <= ClipboardChunk {
			xproto.ChangeProperty(c.x, xproto.PropModeReplace, e.Requestor, prop, typ, 8, uint32(len(data)), data)
			break
		}
		xproto.ChangeWindowAttributes(c.x, e.Requestor, xproto.CwEventMask, []uint32{xproto.EventMaskPropertyChange})
		size := binary.LittleEndian.AppendUint32(nil, uint32(len(data)))
		xproto.ChangeProperty(c.x, xproto.PropModeReplace, e.Requestor, prop, c.incr, 32, 1, size)
		c.sends[sendKey{e.Requestor, prop}] = &send{typ: typ, left: data}
	default:
		prop = xproto.AtomNone
	}
	n := xproto.SelectionNotifyEvent{Time: e.Time, Requestor: e.Requestor, Selection: e.Selection, Target: e.Target, Property: prop}
	xproto.SendEvent(c.x, false, e.Requestor, 0, string(n.Bytes()))
}

// sendNext writes the next INCR chunk; an empty chunk ends the transfer,
// and the requestor's deletion of it forgets it.
func (c *Clipboard) sendNext(k sendKey) {
	s, ok := c.sends[k]
	if !ok {
		return
	}
	if s.done {
		delete(c.sends, k)
		xproto.ChangeWindowAttributes(c.x, k.w, xproto.CwEventMask, []uint32{xproto.EventMaskNoEvent})
		return
	}
	n := min(len(s.left), ClipboardChunk)
	xproto.ChangeProperty(c.x, xproto.PropModeAppend, k.w, k.p, s.typ, 8, uint32(n), s.left[:n])
	s.left = s.left[n:]
	s.done = n == 0
}
