package desktop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/deskside/deskside/agent/desktop"
	"github.com/deskside/deskside/agent/desktop/internal/testclient"
	"github.com/deskside/deskside/agent/desktop/internal/vpxdec"
	"github.com/deskside/deskside/agent/desktop/internal/xvfb"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// The control channel's tests: monitors, pointer, clipboard and monitor
// switching, end to end through a relay, with an X client on the Xvfb
// playing the desktop's other programs.

// ctlDesk is a display with the test client, a relay and an agent serving
// sessions on the display, unattended sessions allowed.
type ctlDesk struct {
	xs     *xvfb.Server
	tc     *testclient.Client
	cs     desksidev1.ConsoleServiceClient
	ctx    context.Context
	device string
}

func startCtlDesk(t *testing.T, cfg xvfb.Config, before func(*testclient.Client)) *ctlDesk {
	t.Helper()
	xs := xvfb.StartWith(t, cfg)
	tc, err := testclient.Start(xs.Display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	if before != nil {
		before(tc)
	}
	r := servertest.Start(t, servertest.Options{})
	st := r.Enroll(t, "desk")
	mgr := desktop.NewManager(desktop.Options{Display: xs.Display, Logger: servertest.DiscardLogger()})
	servertest.RunAgent(t, st, servertest.AgentOptions{Inventory: staticInventory{}, Health: staticHealth{}, Desktop: mgr})
	cs, ctx := r.Admin(t)
	servertest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
		if err != nil || !d.GetDevice().GetOnline() {
			return fmt.Errorf("agent not online")
		}
		return nil
	})
	if _, err := cs.SetDevicePolicy(ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: st.DeviceID, UnattendedAllowed: true}); err != nil {
		t.Fatal(err)
	}
	return &ctlDesk{xs: xs, tc: tc, cs: cs, ctx: ctx, device: st.DeviceID}
}

// ctlMonitor and ctlMsg are the control channel's messages as the viewer
// decodes them; unknown fields are an error, so the protocol cannot grow
// by accident.
type ctlMonitor struct {
	ID      int    `json:"id"`
	Name    string `json:"name"`
	X       int    `json:"x"`
	Y       int    `json:"y"`
	W       int    `json:"w"`
	H       int    `json:"h"`
	Primary bool   `json:"primary"`
}

type ctlMsg struct {
	T       string       `json:"t"`
	List    []ctlMonitor `json:"list"`
	Current *int         `json:"current"`
	X       int          `json:"x"`
	Y       int          `json:"y"`
	Visible bool         `json:"visible"`
	W       int          `json:"w"`
	H       int          `json:"h"`
	HX      int          `json:"hx"`
	HY      int          `json:"hy"`
	PNG     []byte       `json:"png"`
	Text    string       `json:"text"`
}

// ctlNext returns the next control message.
func (v *viewer) ctlNext(t *testing.T, timeout time.Duration) ctlMsg {
	t.Helper()
	select {
	case b := <-v.CtlMsgs:
		var m ctlMsg
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("control message %.200s: %v", b, err)
		}
		return m
	case <-time.After(timeout):
		t.Fatalf("no control message in %v", timeout)
		return ctlMsg{}
	}
}

// ctlWait returns the first control message of type typ for which ok
// holds, skipping the others; with strict, another message of that type
// before it fails the test.
func (v *viewer) ctlWait(t *testing.T, typ string, strict bool, ok func(ctlMsg) bool) ctlMsg {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := v.ctlNext(t, time.Until(deadline))
		if m.T != typ {
			continue
		}
		if ok == nil || ok(m) {
			return m
		}
		if strict {
			t.Fatalf("unexpected %s message: %+v", typ, shortMsg(m))
		}
	}
}

// ctlNone fails if a message of type typ arrives within d.
func (v *viewer) ctlNone(t *testing.T, typ string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case b := <-v.CtlMsgs:
			var m ctlMsg
			if json.Unmarshal(b, &m) == nil && m.T == typ {
				t.Fatalf("unexpected %s message: %+v", typ, shortMsg(m))
			}
		case <-deadline:
			return
		}
	}
}

// short is m with its long fields cut, for messages.
func shortMsg(m ctlMsg) ctlMsg {
	if len(m.Text) > 60 {
		m.Text = m.Text[:60] + fmt.Sprintf("… (%d bytes)", len(m.Text))
	}
	m.PNG = m.PNG[:min(len(m.PNG), 8)]
	return m
}

func (v *viewer) channel(t *testing.T, ch chan *webrtc.DataChannel, name string) *webrtc.DataChannel {
	t.Helper()
	select {
	case dc := <-ch:
		return dc
	case <-time.After(10 * time.Second):
		t.Fatalf("%s channel did not open", name)
		return nil
	}
}

// tryFrame returns the next decoded frame, or nil after timeout.
func (v *viewer) tryFrame(timeout time.Duration) *vpxdec.Frame {
	f, _ := v.Frame(timeout)
	return f
}

func ctlSend(t *testing.T, dc *webrtc.DataChannel, m any) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.SendText(string(b)); err != nil {
		t.Fatal(err)
	}
}

// checkCursorShape decodes a cursorshape message's PNG.
func checkCursorShape(t *testing.T, m ctlMsg) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(m.PNG))
	if err != nil {
		t.Fatalf("cursor shape PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != m.W || b.Dy() != m.H || m.W < 1 || m.W > 256 || m.H > 256 || m.HX >= m.W || m.HY >= m.H {
		t.Fatalf("cursor shape %dx%d hot %d,%d, PNG %v", m.W, m.H, m.HX, m.HY, b)
	}
}

// ctlLeakCheck returns a function that waits for the goroutines and open
// files to come back to what they are now.
func ctlLeakCheck(t *testing.T) func() {
	runtime.GC()
	g0, fd0 := runtime.NumGoroutine(), countFDs()
	return func() {
		t.Helper()
		servertest.CheckFor(t, 15*time.Second, 50*time.Millisecond, func() error {
			if g, fd := runtime.NumGoroutine(), countFDs(); g > g0+2 || fd > fd0 {
				return fmt.Errorf("goroutines %d (were %d), fds %d (were %d)", g, g0, fd, fd0)
			}
			return nil
		})
	}
}

// clipText returns about n bytes (whole lines) of text that JSON escaping
// and Latin-1 would both mangle.
func clipText(n int) string {
	const line = "Grüße, 世界! \"quotes\" \\ <tags> & tabs\t🙂\n"
	return strings.Repeat(line, max(1, n/len(line)))
}

func TestDesktopControlChannel(t *testing.T) {
	d := startCtlDesk(t, xvfb.Config{Width: 1280, Height: 720}, nil)
	clip, err := testclient.OpenClipboard(d.xs.Display)
	if err != nil {
		t.Fatal(err)
	}
	defer clip.Close()

	t.Run("control", func(t *testing.T) {
		done := ctlLeakCheck(t)
		v, err := openViewerWith(t, d.cs, d.ctx, d.device, viewerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v.frame(20 * time.Second)
		in := v.channel(t, v.Input, "input")
		ctl := v.channel(t, v.Control, "control")

		// On open: the monitors, then the pointer's shape.
		m := v.ctlWait(t, "monitors", false, nil)
		if len(m.List) != 1 || m.Current == nil || *m.Current != -1 {
			t.Fatalf("monitors = %+v current %v, want one and -1", m.List, m.Current)
		}
		if mon := m.List[0]; mon.W != 1280 || mon.H != 720 || mon.X != 0 || mon.Y != 0 || !mon.Primary || mon.Name == "" {
			t.Errorf("monitor = %+v, want a primary 1280x720 at 0,0", mon)
		}
		first := v.ctlWait(t, "cursorshape", false, nil)
		checkCursorShape(t, first)

		// The pointer moved through input is reported where it went.
		ctlSend(t, in, map[string]any{"t": "m", "x": 400, "y": 300})
		v.ctlWait(t, "cursor", false, func(m ctlMsg) bool { return m.X == 400 && m.Y == 300 && m.Visible })

		// A new cursor over the window is a new shape.
		if err := d.tc.SetCursor(testclient.CursorHand); err != nil {
			t.Fatal(err)
		}
		hand := v.ctlWait(t, "cursorshape", true, nil)
		checkCursorShape(t, hand)
		if bytes.Equal(hand.PNG, first.PNG) {
			t.Error("the hand cursor's image is the first one's")
		}

		// Copied on the desktop: the viewer gets it, large texts too (the
		// test client serves those in INCR chunks).
		for _, want := range []string{"copied on the desktop ✓ <&>", clipText(300 << 10)} {
			if err := clip.Set(want); err != nil {
				t.Fatal(err)
			}
			v.ctlWait(t, "clipboard", true, func(m ctlMsg) bool { return m.Text == want })
		}

		// Pasted by the technician: the desktop's programs get it (the
		// agent serves large texts by INCR), and it does not come back.
		for _, want := range []string{"from the technician ✓", clipText(600 << 10)} {
			ctlSend(t, ctl, map[string]string{"t": "clipboard", "text": want})
			servertest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
				got, err := clip.Get("UTF8_STRING", 5*time.Second)
				if err != nil {
					return err
				}
				if got != want {
					return fmt.Errorf("pasted %d bytes, want %d", len(got), len(want))
				}
				return nil
			})
		}
		if err := clip.Set("copied again"); err != nil {
			t.Fatal(err)
		}
		v.ctlWait(t, "clipboard", true, func(m ctlMsg) bool { return m.Text == "copied again" })

		// Nonsense is ignored; an unknown monitor gets the list again.
		for _, junk := range []string{"{", `{"t":"nope"}`, `{"t":"monitor","id":"x"}`, `{"t":"clipboard","text":7}`, `[]`, `null`} {
			if err := ctl.SendText(junk); err != nil {
				t.Fatal(err)
			}
		}
		if err := ctl.Send([]byte{0xff, 0x00, 0x01}); err != nil {
			t.Fatal(err)
		}
		ctlSend(t, ctl, map[string]any{"t": "monitor", "id": 7})
		m = v.ctlWait(t, "monitors", true, nil)
		if m.Current == nil || *m.Current != -1 || len(m.List) != 1 {
			t.Errorf("monitors after an unknown one = %+v", shortMsg(m))
		}
		ctlSend(t, in, map[string]any{"t": "m", "x": 10, "y": 20})
		v.ctlWait(t, "cursor", false, func(m ctlMsg) bool { return m.X == 10 && m.Y == 20 })

		// The technician pastes last: the agent owns the clipboard when
		// the session ends.
		ctlSend(t, ctl, map[string]string{"t": "clipboard", "text": "last"})
		servertest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			if got, err := clip.Get("UTF8_STRING", 5*time.Second); err != nil || got != "last" {
				return fmt.Errorf("pasted %q, %v", got, err)
			}
			return nil
		})
		v.Close()
		done()
		// The agent's window is gone, and its ownership with it.
		if owner, err := clip.Owner(); err != nil || owner != 0 {
			t.Errorf("CLIPBOARD owner after the session = %#x, %v; want none", owner, err)
		}
	})

	t.Run("view only", func(t *testing.T) {
		done := ctlLeakCheck(t)
		if err := clip.Set("a desktop secret"); err != nil {
			t.Fatal(err)
		}
		v, err := openViewerWith(t, d.cs, d.ctx, d.device, viewerOptions{viewOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		v.frame(20 * time.Second)
		ctl := v.channel(t, v.Control, "control")
		v.ctlWait(t, "monitors", false, nil)
		checkCursorShape(t, v.ctlWait(t, "cursorshape", false, nil))
		// The pointer is followed for viewers too.
		if err := d.tc.WarpPointer(640, 100); err != nil {
			t.Fatal(err)
		}
		v.ctlWait(t, "cursor", false, func(m ctlMsg) bool { return m.X == 640 && m.Y == 100 })
		// The clipboard is not shared either way.
		if err := clip.Set("another desktop secret"); err != nil {
			t.Fatal(err)
		}
		ctlSend(t, ctl, map[string]string{"t": "clipboard", "text": "from a viewer"})
		v.ctlNone(t, "clipboard", 500*time.Millisecond)
		if got, err := clip.Get("UTF8_STRING", 5*time.Second); err != nil || got != "another desktop secret" {
			t.Errorf("clipboard after a view-only paste = %q, %v", got, err)
		}
		v.Close()
		done()
	})
}

func TestDesktopMonitorSwitch(t *testing.T) {
	var skip error
	d := startCtlDesk(t, xvfb.Config{Width: 1920, Height: 1080}, func(tc *testclient.Client) {
		skip = tc.AddMonitors([]testclient.Monitor{
			{Name: "LEFT", X: 0, Y: 0, W: 960, H: 1080, Primary: true},
			{Name: "RIGHT", X: 960, Y: 0, W: 960, H: 1080},
		})
	})
	testkit.Need(t, "RandR 1.5 monitors in Xvfb", skip, "install Debian 12's xvfb or newer (make deps)")
	done := ctlLeakCheck(t)
	v, err := openViewerWith(t, d.cs, d.ctx, d.device, viewerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f := v.frame(20 * time.Second); f.Width != 1920 || f.Height != 1080 {
		t.Fatalf("first frame %dx%d, want the whole screen", f.Width, f.Height)
	}
	in := v.channel(t, v.Input, "input")
	ctl := v.channel(t, v.Control, "control")
	m := v.ctlWait(t, "monitors", false, nil)
	right := -1
	for _, mon := range m.List {
		if mon.X == 960 && mon.W == 960 && mon.H == 1080 {
			right = mon.ID
			if mon.Name != "RIGHT" || mon.Primary {
				t.Errorf("right monitor = %+v", mon)
			}
		}
	}
	if right < 0 || m.Current == nil || *m.Current != -1 {
		t.Fatalf("monitors = %+v, want one at x=960, current -1", shortMsg(m))
	}

	// switchTo asks for a monitor and waits for the agent's answer and
	// for a frame of the new size; the screen is repainted now and then,
	// as an idle screen sends nothing.
	switchTo := func(id, w, h int) *vpxdec.Frame {
		t.Helper()
		for v.tryFrame(0) != nil {
		}
		ctlSend(t, ctl, map[string]any{"t": "monitor", "id": id})
		m := v.ctlWait(t, "monitors", true, nil)
		if m.Current == nil || *m.Current != id {
			t.Fatalf("monitors after switching to %d: %+v", id, shortMsg(m))
		}
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			f := v.tryFrame(time.Second)
			if f != nil && f.Width == w && f.Height == h {
				return f
			}
			if f == nil {
				d.tc.SetQuadrants(testclient.DefaultQuadrants)
			}
		}
		t.Fatalf("no %dx%d frame after switching to monitor %d", w, h, id)
		return nil
	}

	f := switchTo(right, 960, 1080)
	for _, p := range []struct {
		x, y int
		want int
	}{{f.Width / 2, f.Height / 4, 1}, {f.Width / 2, 3 * f.Height / 4, 3}} {
		want := testclient.DefaultQuadrants[p.want]
		if r, g, b := f.RGB(p.x, p.y); !near(r, want.R) || !near(g, want.G) || !near(b, want.B) {
			t.Errorf("right monitor at %d,%d: %d,%d,%d, want %v", p.x, p.y, r, g, b, want)
		}
	}
	// Input and the pointer are relative to the monitor shown.
	d.tc.ResetEvents()
	ctlSend(t, in, map[string]any{"t": "m", "x": 10, "y": 20})
	if err := d.tc.WaitFor(func(evs []testclient.Event) bool {
		for _, e := range evs {
			if e.Kind == testclient.Motion && e.RootX == 970 && e.RootY == 20 {
				return true
			}
		}
		return false
	}, 10*time.Second); err != nil {
		t.Fatalf("pointer not moved to 970,20: %v", err)
	}
	v.ctlWait(t, "cursor", false, func(m ctlMsg) bool { return m.X == 10 && m.Y == 20 && m.Visible })
	if err := d.tc.WarpPointer(100, 100); err != nil {
		t.Fatal(err)
	}
	v.ctlWait(t, "cursor", false, func(m ctlMsg) bool { return m.X == 100-960 && m.Y == 100 && !m.Visible })

	// A new monitor appears in a fresh list.
	if err := d.tc.AddMonitors([]testclient.Monitor{{Name: "THIRD", X: 0, Y: 0, W: 640, H: 480}}); err != nil {
		t.Fatal(err)
	}
	m = v.ctlWait(t, "monitors", true, func(m ctlMsg) bool {
		for _, mon := range m.List {
			if mon.Name == "THIRD" && mon.W == 640 && mon.H == 480 {
				return true
			}
		}
		return false
	})
	if m.Current == nil || *m.Current != right {
		t.Errorf("current after the layout change = %v, want %d", m.Current, right)
	}

	switchTo(-1, 1920, 1080)
	v.ctlWait(t, "cursor", false, func(m ctlMsg) bool { return m.X == 100 && m.Y == 100 && m.Visible })

	v.Close()
	done()
}
