package clipboard

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/desktop/internal/testclient"
	"github.com/deskside/deskside/agent/desktop/internal/xvfb"
	"github.com/deskside/deskside/internal/testkit"
)

const waitTimeout = 10 * time.Second

// setup starts an Xvfb, a Clipboard reporting changes on the returned
// channel, and an independent X client to copy and paste with.
func setup(t *testing.T) (*x11Clipboard, chan string, *testclient.Clipboard) {
	t.Helper()
	s := xvfb.Start(t)
	changes := make(chan string, 16)
	c, err := Open(Config{Display: s.Display, OnChange: func(text string) { changes <- text }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	other, err := testclient.OpenClipboard(s.Display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	return c.(*x11Clipboard), changes, other
}

func waitChange(t *testing.T, changes chan string) string {
	t.Helper()
	select {
	case s := <-changes:
		return s
	case <-time.After(waitTimeout):
		t.Fatal("no clipboard change reported")
		return ""
	}
}

func noChange(t *testing.T, changes chan string) {
	t.Helper()
	select {
	case s := <-changes:
		t.Fatalf("unexpected clipboard change reported (%d bytes: %.40q)", len(s), s)
	case <-time.After(200 * time.Millisecond):
	}
}

// text returns n bytes of varied UTF-8 (no character split at the end).
func text(n int) string {
	const pattern = "Grüße, 世界! \"quotes\" <tags> & tabs\t\n"
	s := strings.Repeat(pattern, n/len(pattern)+1)
	return Truncate(s, n)
}

func TestReadsOtherClientsText(t *testing.T) {
	c, changes, other := setup(t)
	for _, tt := range []struct {
		name string
		text string
		want string
	}{
		{name: "short", text: "hello from the desktop ✓", want: "hello from the desktop ✓"},
		{name: "empty", text: "", want: ""},
		{name: "INCR", text: text(200 << 10), want: text(200 << 10)},
		{name: "over the limit is cut", text: text(MaxText + 1000), want: text(MaxText)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := other.Set(tt.text); err != nil {
				t.Fatal(err)
			}
			got := waitChange(t, changes)
			if got != tt.want {
				t.Fatalf("OnChange got %d bytes (%.40q…), want %d bytes", len(got), got, len(tt.want))
			}
		})
	}
	// Nothing else is pending (each change was reported once).
	noChange(t, changes)
	_ = c
}

func TestServesItsText(t *testing.T) {
	c, changes, other := setup(t)
	for _, tt := range []struct {
		name, text, target, want string
	}{
		{name: "UTF8_STRING", text: "from the technician ✓", target: "UTF8_STRING", want: "from the technician ✓"},
		{name: "TEXT", text: "plain", target: "TEXT", want: "plain"},
		{name: "STRING is Latin-1", text: "café ✓", target: "STRING", want: "caf\xe9 ?"},
		{name: "TARGETS", text: "x", target: "TARGETS", want: "TARGETS TIMESTAMP UTF8_STRING TEXT STRING"},
		{name: "INCR", text: text(300 << 10), target: "UTF8_STRING", want: text(300 << 10)},
		{name: "INCR at the limit", text: text(MaxText), target: "UTF8_STRING", want: text(MaxText)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.SetText(tt.text); err != nil {
				t.Fatal(err)
			}
			got, err := other.Get(tt.target, waitTimeout)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("pasted %d bytes (%.60q), want %d bytes (%.60q)", len(got), got, len(tt.want), tt.want)
			}
		})
	}
	if _, err := other.Get("image/png", waitTimeout); err == nil {
		t.Error("an image target was converted")
	}
	// Its own text is not reported as a change.
	noChange(t, changes)
	c.Close() // the loop has ended: its state can be read
	if len(c.sends) != 0 {
		t.Errorf("%d INCR transfers still open", len(c.sends))
	}
}

func TestOwnershipPassesOn(t *testing.T) {
	c, changes, other := setup(t)
	if err := c.SetText("mine"); err != nil {
		t.Fatal(err)
	}
	if err := other.Set("theirs"); err != nil {
		t.Fatal(err)
	}
	if got := waitChange(t, changes); got != "theirs" {
		t.Fatalf("OnChange(%q), want theirs", got)
	}
	// Taking it back works, and serves the new text.
	if err := c.SetText("mine again"); err != nil {
		t.Fatal(err)
	}
	if got, err := other.Get("UTF8_STRING", waitTimeout); err != nil || got != "mine again" {
		t.Fatalf("pasted %q, %v", got, err)
	}
	if other.Owned() {
		t.Error("the other client still thinks it owns the clipboard")
	}
}

func TestSetTextTooLarge(t *testing.T) {
	c, _, _ := setup(t)
	if err := c.SetText(strings.Repeat("x", MaxText+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SetText(MaxText+1) = %v, want ErrTooLarge", err)
	}
}

func TestCloseGivesUpTheClipboard(t *testing.T) {
	s := xvfb.Start(t)
	other, err := testclient.OpenClipboard(s.Display)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	testkit.CheckGoroutines(t)
	c, err := Open(Config{Display: s.Display, OnChange: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetText("bye"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close() // idempotent
	if err := c.SetText("again"); !errors.Is(err, ErrClosed) {
		t.Errorf("SetText after Close = %v, want ErrClosed", err)
	}
	if owner, err := other.Owner(); err != nil || owner != 0 {
		t.Errorf("CLIPBOARD owner after Close = %#x, %v; want none", owner, err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Config{Display: ":1"}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("Open without OnChange = %v, want ErrBadConfig", err)
	}
	if _, err := Open(Config{Display: ":64999", OnChange: func(string) {}}); !errors.Is(err, ErrNoDisplay) {
		t.Errorf("Open(:64999) = %v, want ErrNoDisplay", err)
	}
}

func TestNoXFixes(t *testing.T) {
	s := xvfb.StartWith(t, xvfb.Config{Args: []string{"-extension", "XFIXES"}})
	if _, err := Open(Config{Display: s.Display, OnChange: func(string) {}}); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Open without XFIXES = %v, want ErrNotSupported", err)
	}
}
