package xconn

import (
	"testing"
	"time"

	"github.com/jezek/xgb/xfixes"
	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop/internal/xvfb"
)

// TestLayoutChange dials a server, one whose extension numbers differ
// (no XFIXES, so the extensions after it move down), and the first again:
// its XFIXES events must still decode as XFIXES events, not as whatever
// took their numbers on the second server.
func TestLayoutChange(t *testing.T) {
	normal := xvfb.Start(t)
	other := xvfb.StartWith(t, xvfb.Config{Args: []string{"-extension", "XFIXES"}})
	for i, display := range []string{normal.Display, other.Display, normal.Display} {
		c, err := Dial(display, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Has(ExtXFixes) != (display == normal.Display) {
			t.Fatalf("dial %d (%s): XFIXES present = %v", i, display, c.Has(ExtXFixes))
		}
		if c.Has(ExtXFixes) {
			checkXFixesEvent(t, c)
		}
		c.Close()
	}
}

// checkXFixesEvent takes the PRIMARY selection and waits for XFIXES to
// say so.
func checkXFixesEvent(t *testing.T, c *Conn) {
	t.Helper()
	x := c.X
	if _, err := xfixes.QueryVersion(x, 5, 0).Reply(); err != nil {
		t.Fatal(err)
	}
	win, err := xproto.NewWindowId(x)
	if err != nil {
		t.Fatal(err)
	}
	if err := xproto.CreateWindowChecked(x, 0, win, c.Root, 0, 0, 1, 1, 0, xproto.WindowClassInputOnly, 0, 0, nil).Check(); err != nil {
		t.Fatal(err)
	}
	if err := xfixes.SelectSelectionInputChecked(x, win, xproto.AtomPrimary, xfixes.SelectionEventMaskSetSelectionOwner).Check(); err != nil {
		t.Fatal(err)
	}
	if err := xproto.SetSelectionOwnerChecked(x, win, xproto.AtomPrimary, xproto.TimeCurrentTime).Check(); err != nil {
		t.Fatal(err)
	}
	got := make(chan any, 1)
	go func() {
		ev, xerr := x.WaitForEvent()
		if xerr != nil {
			got <- xerr
			return
		}
		got <- ev
	}()
	select {
	case ev := <-got:
		if e, ok := ev.(xfixes.SelectionNotifyEvent); !ok || e.Owner != win {
			t.Fatalf("event %T %v, want an XFIXES SelectionNotify for window %#x", ev, ev, win)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no XFIXES event")
	}
}
