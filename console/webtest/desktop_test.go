//go:build linux

package webtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop"
	"github.com/deskside/deskside/agent/desktop/consent"
	"github.com/deskside/deskside/agent/desktop/encode"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// The X side of the desktop test. agent/desktop/internal/{xvfb,testclient}
// do the same for the agent's own tests but are internal to agent/desktop,
// so this file has a small copy: an Xvfb on a free display and a client
// window covering the screen in four colours that records the input it gets.

const screenW, screenH = 1280, 720

// quadrant colours of the test picture: top-left red, top-right green,
// bottom-left blue, bottom-right white.
var quadrants = [4][3]uint8{{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}}

// startXvfb runs a width×height Xvfb on the first free display
// (-displayfd) for t.
func startXvfb(t testing.TB, width, height int) string {
	t.Helper()
	testkit.Heavy(t, "starts Xvfb")
	path, err := exec.LookPath("Xvfb")
	testkit.Need(t, "Xvfb", err, "install the Debian package xvfb (make deps)")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(path, "-screen", "0", fmt.Sprintf("%dx%dx24", width, height), "-nolisten", "tcp", "-noreset", "-displayfd", "3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case n := <-line:
		if _, err := strconv.Atoi(n); err != nil {
			t.Fatalf("Xvfb did not report a display (%q): %s", n, stderr.String())
		}
		return ":" + n
	case <-time.After(30 * time.Second):
		t.Fatalf("Xvfb did not start in time: %s", stderr.String())
	}
	return ""
}

// startDesktop checks that this build can encode VP8 and starts an Xvfb
// with the test client on it.
func startDesktop(t *testing.T) (string, *xClient) {
	t.Helper()
	xgb.Logger = log.New(io.Discard, "", 0) // "no ~/.Xauthority": Xvfb runs without one
	testkit.NeedOK(t, "the VP8 encoder", encode.Available, "this build has none (it needs cgo and libvpx)",
		"install the Debian package libvpx-dev (make deps) and build with CGO_ENABLED=1")
	display := startXvfb(t, screenW, screenH)
	return display, startXClient(t, display)
}

// xEvent is one input event the test window received.
type xEvent struct {
	kind   string // press, release, key, keyup, motion
	x, y   int
	button int
	text   string // what a key typed
	keysym uint32
}

func (e xEvent) String() string {
	switch e.kind {
	case "key", "keyup":
		return fmt.Sprintf("%s %#x %q", e.kind, e.keysym, e.text)
	case "press", "release":
		return fmt.Sprintf("%s %d at %d,%d", e.kind, e.button, e.x, e.y)
	}
	return fmt.Sprintf("%s %d,%d", e.kind, e.x, e.y)
}

// xClient is a window covering the screen with the test picture.
type xClient struct {
	x      *xgb.Conn
	win    xproto.Window
	gc     xproto.Gcontext
	min    int
	per    int
	syms   []xproto.Keysym
	mu     sync.Mutex
	events []xEvent
	notify chan struct{}
	done   chan struct{}
}

func startXClient(t *testing.T, display string) *xClient {
	t.Helper()
	x, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatalf("connect to %s: %v", display, err)
	}
	c := &xClient{x: x, notify: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() {
		x.Close()
		<-c.done
	})
	setup := xproto.Setup(x)
	scr := setup.DefaultScreen(x)
	km, err := xproto.GetKeyboardMapping(x, setup.MinKeycode, byte(int(setup.MaxKeycode)-int(setup.MinKeycode)+1)).Reply()
	if err != nil {
		t.Fatal(err)
	}
	c.min, c.per, c.syms = int(setup.MinKeycode), int(km.KeysymsPerKeycode), km.Keysyms
	if c.win, err = xproto.NewWindowId(x); err != nil {
		t.Fatal(err)
	}
	err = xproto.CreateWindowChecked(x, scr.RootDepth, c.win, scr.Root, 0, 0, screenW, screenH, 0, xproto.WindowClassInputOutput, scr.RootVisual,
		xproto.CwBackPixel|xproto.CwOverrideRedirect|xproto.CwEventMask,
		[]uint32{scr.BlackPixel, 1, xproto.EventMaskExposure | xproto.EventMaskKeyPress | xproto.EventMaskKeyRelease |
			xproto.EventMaskButtonPress | xproto.EventMaskButtonRelease | xproto.EventMaskPointerMotion}).Check()
	if err != nil {
		t.Fatal(err)
	}
	if c.gc, err = xproto.NewGcontextId(x); err != nil {
		t.Fatal(err)
	}
	if err := xproto.CreateGCChecked(x, c.gc, xproto.Drawable(c.win), 0, nil).Check(); err != nil {
		t.Fatal(err)
	}
	exposed := make(chan struct{})
	go c.loop(exposed)
	if err := xproto.MapWindowChecked(x, c.win).Check(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exposed:
	case <-time.After(10 * time.Second):
		t.Fatal("test window not exposed")
	}
	if err := xproto.SetInputFocusChecked(x, xproto.InputFocusPointerRoot, c.win, xproto.TimeCurrentTime).Check(); err != nil {
		t.Fatal(err)
	}
	return c
}

// paint fills the quadrants (or, with one colour, everything) and waits for the server.
func (c *xClient) paint(cols ...[3]uint8) {
	hw, hh := screenW/2, screenH/2
	rects := []xproto.Rectangle{{X: 0, Y: 0, Width: uint16(hw), Height: uint16(hh)}, {X: int16(hw), Y: 0, Width: uint16(hw), Height: uint16(hh)},
		{X: 0, Y: int16(hh), Width: uint16(hw), Height: uint16(hh)}, {X: int16(hw), Y: int16(hh), Width: uint16(hw), Height: uint16(hh)}}
	for i, r := range rects {
		col := cols[min(i, len(cols)-1)]
		xproto.ChangeGC(c.x, c.gc, xproto.GcForeground, []uint32{uint32(col[0])<<16 | uint32(col[1])<<8 | uint32(col[2])})
		xproto.PolyFillRectangle(c.x, xproto.Drawable(c.win), c.gc, []xproto.Rectangle{r})
	}
	xproto.GetInputFocus(c.x).Reply() // a round trip: the drawing is done
}

func (c *xClient) loop(exposed chan struct{}) {
	defer close(c.done)
	first := true
	for {
		ev, err := c.x.WaitForEvent()
		if ev == nil && err == nil {
			return
		}
		switch e := ev.(type) {
		case xproto.ExposeEvent:
			if e.Count == 0 {
				c.paint(quadrants[:]...)
				if first {
					first = false
					close(exposed)
				}
			}
		case xproto.KeyPressEvent:
			c.record(c.key("key", e.Detail, e.State))
		case xproto.KeyReleaseEvent:
			c.record(c.key("keyup", e.Detail, e.State))
		case xproto.ButtonPressEvent:
			c.record(xEvent{kind: "press", button: int(e.Detail), x: int(e.RootX), y: int(e.RootY)})
		case xproto.ButtonReleaseEvent:
			c.record(xEvent{kind: "release", button: int(e.Detail), x: int(e.RootX), y: int(e.RootY)})
		case xproto.MotionNotifyEvent:
			c.record(xEvent{kind: "motion", x: int(e.RootX), y: int(e.RootY)})
		}
	}
}

// key looks a keycode up in the core keyboard mapping (group 1; Shift
// picks the second keysym) and names the character it types.
func (c *xClient) key(kind string, code xproto.Keycode, state uint16) xEvent {
	i := (int(code) - c.min) * c.per
	var ks xproto.Keysym
	if c.per > 0 && i >= 0 && i+c.per <= len(c.syms) {
		ks = c.syms[i]
		if state&xproto.ModMaskShift != 0 && c.per > 1 && c.syms[i+1] != 0 {
			ks = c.syms[i+1]
		} else if state&xproto.ModMaskShift != 0 && ks >= 'a' && ks <= 'z' {
			ks -= 'a' - 'A'
		}
	}
	text := ""
	if ks >= 0x20 && ks <= 0x7e {
		text = string(rune(ks))
	}
	return xEvent{kind: kind, keysym: uint32(ks), text: text}
}

func (c *xClient) record(e xEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
	close(c.notify)
	c.notify = make(chan struct{})
}

func (c *xClient) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = nil
}

// waitFor waits until cond holds for the events so far.
func (c *xClient) waitFor(t *testing.T, what string, timeout time.Duration, cond func([]xEvent) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		evs, notify := append([]xEvent(nil), c.events...), c.notify
		c.mu.Unlock()
		if cond(evs) {
			return
		}
		select {
		case <-notify:
		case <-deadline:
			var b strings.Builder
			for i, e := range evs {
				if i > 0 {
					b.WriteString("; ")
				}
				if i == 60 {
					fmt.Fprintf(&b, "… %d more", len(evs)-i)
					break
				}
				b.WriteString(e.String())
			}
			t.Fatalf("%s: not seen within %v; the test window got %d events: %s", what, timeout, len(evs), b.String())
		}
	}
}

func typed(evs []xEvent) string {
	var b strings.Builder
	for _, e := range evs {
		if e.kind == "key" {
			b.WriteString(e.text)
		}
	}
	return b.String()
}

// --- browser side ---------------------------------------------------------------------

// waitFrameJS resolves once the video presents a frame (requestVideoFrameCallback).
const waitFrameJS = `new Promise((resolve) => {
  const v = document.querySelector('[data-testid=session-video]');
  const go = () => v.requestVideoFrameCallback((_, m) => resolve(m.width + 'x' + m.height));
  if (v.srcObject) go(); else { const t = setInterval(() => { if (v.srcObject) { clearInterval(t); go(); } }, 20); }
})`

// pixelsJS draws the video into a canvas at its intrinsic size and reads
// the centre of each quadrant.
const pixelsJS = `(() => {
  const v = document.querySelector('[data-testid=session-video]');
  const w = v.videoWidth, h = v.videoHeight;
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  const g = c.getContext('2d', { willReadFrequently: true });
  g.drawImage(v, 0, 0);
  const px = (x, y) => Array.from(g.getImageData(Math.floor(x), Math.floor(y), 1, 1).data.slice(0, 3));
  return [px(w/4, h/4), px(3*w/4, h/4), px(w/4, 3*h/4), px(3*w/4, 3*h/4)];
})()`

// clientPointJS maps a screen pixel to client coordinates on the video
// element (object-fit: contain), independently of the app's own maths.
func clientPointJS(x, y int) string {
	return fmt.Sprintf(`(() => {
  const v = document.querySelector('[data-testid=session-video]');
  const r = v.getBoundingClientRect(), vw = v.videoWidth, vh = v.videoHeight;
  const s = Math.min(r.width / vw, r.height / vh);
  const left = r.left + (r.width - vw * s) / 2, top = r.top + (r.height - vh * s) / 2;
  return [left + (%d + 0.5) * s, top + (%d + 0.5) * s];
})()`, x, y)
}

func nearColour(got []int, want [3]uint8) bool {
	if len(got) != 3 {
		return false
	}
	for i := range 3 {
		d := got[i] - int(want[i])
		if d < -48 || d > 48 {
			return false
		}
	}
	return true
}

func needZenity(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("zenity")
	testkit.Need(t, "zenity", err, "apt-get install zenity (make deps)")
}

// consentPrompt waits for the agent's consent prompt on display and
// returns its window and the command line showing it.
func consentPrompt(t *testing.T, display string) (win, cmdline string) {
	t.Helper()
	xdo := func(args ...string) (string, error) {
		cmd := exec.Command("xdotool", args...)
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		out, err := cmd.Output()
		return string(out), err
	}
	servertest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		out, err := xdo("search", "--name", consent.Title)
		if err != nil {
			return fmt.Errorf("no consent prompt on the device's display: %v", err)
		}
		// GTK may name more than one window so; the prompt has a pid.
		for _, w := range strings.Fields(out) {
			pid, err := xdo("getwindowpid", w)
			if err != nil {
				continue
			}
			b, err := os.ReadFile("/proc/" + strings.TrimSpace(pid) + "/cmdline")
			if err != nil {
				continue
			}
			win, cmdline = w, strings.ReplaceAll(string(b), "\x00", " ")
			return nil
		}
		return fmt.Errorf("windows %q, none with a pid yet", out)
	})
	return win, cmdline
}

// answerPrompt presses keys in the prompt, as its user would.
func answerPrompt(t *testing.T, display, win string, keys ...string) {
	t.Helper()
	cmd := exec.Command("xdotool", append([]string{"windowfocus", "--sync", win, "key"}, keys...)...)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xdotool: %v %s", err, out)
	}
}

// rawKey dispatches one key event the way a keyboard would (modifiers held separately).
func rawKey(typ input.DispatchKeyEventType, code, key string, vk int64, mods int64, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, input.DispatchKeyEvent, input.DispatchKeyEventParams{
			Type: typ, Code: code, Key: key, WindowsVirtualKeyCode: vk, Modifiers: mods, Text: text, UnmodifiedText: text,
		})
		return err
	})
}

func press(code, key string, vk, mods int64, text string) chromedp.Action[chromedp.Void] {
	typ := input.DispatchKeyEventTypeRawKeyDown
	if text != "" {
		typ = input.DispatchKeyEventTypeKeyDown
	}
	return chromedp.Steps(rawKey(typ, code, key, vk, mods, text), rawKey(input.DispatchKeyEventTypeKeyUp, code, key, vk, mods, ""))
}

// TestRemoteDesktopInBrowser drives the viewer in Chromium against a real
// relay and an agent whose session manager captures, encodes and injects
// on an Xvfb display showing a known picture: the user's denial in the
// consent prompt and the admin's policy switch, the picture's colours read back from the video,
// a click and typed text arriving at the X client, the wheel, the escape
// hatch, stats, 1:1 scaling, ending and starting again, relay-only.
func TestRemoteDesktopInBrowser(t *testing.T) {
	display, xc := startDesktop(t)
	c := startConsole(t)
	st := c.relay.Enroll(t, "remote-desk")
	agent := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: staticInv{}, Health: staticHealth{}, Hostname: "remote-desk",
		Desktop: desktop.NewManager(desktop.Options{Display: display, Logger: servertest.DiscardLogger()}),
	})
	cs, ctx := c.relay.Admin(t)
	session := c.url + "#/devices/" + st.DeviceID + "/session?control=1"
	state := func(s string) chromedp.CSS { return css(`[data-testid=session-state][data-state=` + s + `]`) }
	// firstFrame waits until the video presents a frame and returns its
	// size. The screen is idle: the agent sends a key frame once connected.
	firstFrame := func() string {
		t.Helper()
		return value(t, c, 30*time.Second, chromedp.Evaluate[string](waitFrameJS, chromedp.EvalAwaitPromise))
	}
	// waitLive waits for the session to be live, or fails with what the page says.
	waitLive := func() {
		t.Helper()
		servertest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
			s := eval[map[string]string](t, c, `(() => { const e = document.querySelector('[data-testid=session-state]'); return e ? {state: e.dataset.state ?? '', text: e.textContent} : {state: 'none', text: location.hash}; })()`)
			if s["state"] != "live" {
				return fmt.Errorf("session %s: %s", s["state"], s["text"])
			}
			return nil
		})
	}

	c.signIn(t, "admin", servertest.AdminPassword)
	c.run(t, 20*time.Second, chromedp.WaitVisible(row(st.DeviceID, `[data-online=true]`)))

	// Attended by default: the agent asks the device's user with the real
	// zenity prompt on its display; they deny (Escape), and the page says so.
	needZenity(t)
	c.run(t, 20*time.Second, chromedp.Navigate(session))
	prompt, _ := consentPrompt(t, display)
	c.screenshot(t, "remote-waiting-consent.png")
	answerPrompt(t, display, prompt, "Escape")
	c.run(t, 20*time.Second, chromedp.WaitVisible(css(`[data-testid=session-state][data-state=ended][data-end=device]`)))
	c.screenshot(t, "remote-denied.png")
	if msg := eval[string](t, c, `document.querySelector('[data-testid=session-state]').textContent`); !strings.Contains(msg, "denied by the user") {
		t.Errorf("denial reads %q, want the agent's %q", msg, "denied by the user")
	}

	// The admin allows unattended sessions on the device page.
	c.run(t, 20*time.Second,
		chromedp.Navigate(c.url+"#/devices/"+st.DeviceID),
		chromedp.WaitVisible(css(`[data-testid=remote-policy]`)),
		chromedp.WaitVisible(css(`[data-testid=remote-control]:not([disabled])`)),
		chromedp.Click(css(`[data-testid=policy-unattended]`)),
		chromedp.Click(css(`[data-testid=policy-save]`)),
	)
	servertest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if got := eval[string](t, c, `document.querySelector('[data-testid=policy-status]').textContent`); got != "Saved." {
			return fmt.Errorf("policy status %q", got)
		}
		return nil
	})
	c.screenshot(t, "device-remote.png")
	d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
	if err != nil || !d.GetDevice().GetUnattendedAllowed() {
		t.Fatalf("after saving the policy: unattended_allowed=%v (%v)", d.GetDevice().GetUnattendedAllowed(), err)
	}

	// Control: live, and the video plays.
	c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=remote-control]`)))
	waitLive()
	size := firstFrame()
	if size != fmt.Sprintf("%dx%d", screenW, screenH) {
		t.Errorf("video frames are %s, want the screen's %dx%d", size, screenW, screenH)
	}
	servertest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		px := eval[[][]int](t, c, pixelsJS)
		for i, want := range quadrants {
			if !nearColour(px[i], want) {
				return fmt.Errorf("quadrant %d is %v, want about %v (all: %v)", i, px[i], want, px)
			}
		}
		return nil
	})

	// A click in the top-right quadrant lands on the same screen pixel.
	xc.reset()
	pt := eval[[]float64](t, c, clientPointJS(960, 180))
	c.run(t, 10*time.Second, chromedp.MouseClickXY(pt[0], pt[1]))
	xc.waitFor(t, "a left click at 960,180", 10*time.Second, func(evs []xEvent) bool {
		for _, e := range evs {
			if e.kind == "press" && e.button == 1 && abs(e.x-960) <= 1 && abs(e.y-180) <= 1 {
				return true
			}
		}
		return false
	})
	if focused := eval[string](t, c, `document.activeElement?.dataset.testid ?? ''`); focused != "session-screen" {
		t.Fatalf("after the click the focus is on %q, want the screen", focused)
	}

	// The control channel. The remote cursor follows a mouse move and is
	// drawn where the pointer is (the hot spot is inside the image), with
	// the local cursor hidden over the screen.
	pt = eval[[]float64](t, c, clientPointJS(640, 400))
	c.run(t, 10*time.Second, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, pt[0], pt[1]))
	servertest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		r := eval[map[string]any](t, c, `(() => {
  const e = document.querySelector('[data-testid=session-cursor]');
  if (!e || e.hidden || !e.complete || !e.naturalWidth) return {shown: false};
  const r = e.getBoundingClientRect();
  return {shown: true, l: r.left, t: r.top, r: r.right, b: r.bottom, cursor: getComputedStyle(document.querySelector('.session-scroll')).cursor};
})()`)
		if r["shown"] != true {
			return errors.New("no remote cursor shown")
		}
		l, tp, rt, b := r["l"].(float64), r["t"].(float64), r["r"].(float64), r["b"].(float64)
		if pt[0] < l-2 || pt[0] > rt+2 || pt[1] < tp-2 || pt[1] > b+2 {
			return fmt.Errorf("remote cursor at %v,%v–%v,%v, want it over the pointer at %v,%v", l, tp, rt, b, pt[0], pt[1])
		}
		if r["cursor"] != "none" {
			return fmt.Errorf("local cursor over the screen is %v, want none", r["cursor"])
		}
		return nil
	})
	// The monitor picker lists all screens and the one monitor; all are shown.
	servertest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		opts := eval[[]string](t, c, `[...document.querySelectorAll('[data-testid=session-monitor] option')].map((o) => o.value + ' ' + o.textContent)`)
		cur := eval[string](t, c, `document.querySelector('[data-testid=session-monitor]').value`)
		if len(opts) != 2 || opts[0] != "-1 All screens" || !strings.HasPrefix(opts[1], "0 ") || !strings.HasSuffix(opts[1], fmt.Sprintf("(%d×%d, primary)", screenW, screenH)) || cur != "-1" {
			return fmt.Errorf("monitor options %q (selected %q), want All screens and one %dx%d primary monitor", opts, cur, screenW, screenH)
		}
		return nil
	})
	// The device's clipboard shows up in the page.
	sel := startXSelection(t, display)
	const clip = "from the device: Grüße <b>&amp;</b> 🙂"
	sel.set(t, clip)
	servertest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if got := eval[string](t, c, `document.querySelector('[data-testid=session-clipboard-remote]').textContent`); got != clip {
			return fmt.Errorf("remote clipboard shows %q, want %q", got, clip)
		}
		return nil
	})
	// A paste on the screen puts the text on the device's clipboard.
	if xclip, err := exec.LookPath("xclip"); err == nil {
		const pasted = "from the browser: ¡hola! \"quoted\""
		c.run(t, 5*time.Second, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
  const dt = new DataTransfer();
  dt.setData('text/plain', %q);
  document.querySelector('[data-testid=session-screen]').dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true}));
})()`, pasted)))
		servertest.CheckFor(t, 10*time.Second, 200*time.Millisecond, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, xclip, "-o", "-selection", "clipboard")
			cmd.Env = append(os.Environ(), "DISPLAY="+display)
			out, err := cmd.Output()
			if string(out) != pasted {
				return fmt.Errorf("device clipboard %q (%v), want %q", out, err, pasted)
			}
			return nil
		})
	} else {
		t.Log("xclip not installed: not checking that a paste reaches the device's clipboard")
	}

	// Typing: Shift held like a keyboard does, plain keys from chromedp.
	xc.reset()
	const shift = 8
	c.run(t, 10*time.Second,
		rawKey(input.DispatchKeyEventTypeRawKeyDown, "ShiftLeft", "Shift", 16, shift, ""),
		press("KeyH", "H", 72, shift, "H"),
		rawKey(input.DispatchKeyEventTypeKeyUp, "ShiftLeft", "Shift", 16, 0, ""),
		chromedp.KeyEvent("ello 42"),
		rawKey(input.DispatchKeyEventTypeRawKeyDown, "ShiftLeft", "Shift", 16, shift, ""),
		press("Digit1", "!", 49, shift, "!"),
		rawKey(input.DispatchKeyEventTypeKeyUp, "ShiftLeft", "Shift", 16, 0, ""),
	)
	xc.waitFor(t, `typed "Hello 42!"`, 10*time.Second, func(evs []xEvent) bool { return typed(evs) == "Hello 42!" })

	// Right click (no browser menu) and the wheel: one notch down is X button 5.
	xc.reset()
	// The clipboard bar may still be settling after the paste (the
	// device echoes its new clipboard): wait for the layout to hold still.
	var prev []float64
	servertest.CheckFor(t, 10*time.Second, 150*time.Millisecond, func() error {
		pt = eval[[]float64](t, c, clientPointJS(320, 540))
		same := prev != nil && pt[0] == prev[0] && pt[1] == prev[1]
		prev = pt
		if !same {
			return errors.New("the screen is still moving on the page")
		}
		return nil
	})
	c.run(t, 10*time.Second,
		chromedp.MouseClickXY(pt[0], pt[1], chromedp.ButtonRight),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseWheel, pt[0], pt[1], func(p *input.DispatchMouseEventParams) { p.DeltaX, p.DeltaY = 0.01, 100 }),
	)
	xc.waitFor(t, "a right click at 320,540 and a wheel click down", 10*time.Second, func(evs []xEvent) bool {
		right, wheel := false, false
		for _, e := range evs {
			right = right || e.kind == "press" && e.button == 3 && abs(e.x-320) <= 1 && abs(e.y-540) <= 1
			wheel = wheel || e.kind == "press" && e.button == 5
		}
		return right && wheel
	})

	// The escape hatch gives the keyboard back; the held modifiers are released on the device.
	xc.reset()
	c.run(t, 10*time.Second,
		rawKey(input.DispatchKeyEventTypeRawKeyDown, "ControlLeft", "Control", 17, 2, ""),
		rawKey(input.DispatchKeyEventTypeRawKeyDown, "AltLeft", "Alt", 18, 2|1, ""),
		rawKey(input.DispatchKeyEventTypeRawKeyDown, "ShiftLeft", "Shift", 16, 2|1|shift, ""),
		rawKey(input.DispatchKeyEventTypeRawKeyDown, "Escape", "Escape", 27, 2|1|shift, ""),
	)
	if focused := eval[string](t, c, `document.activeElement?.dataset.testid ?? ''`); focused == "session-screen" {
		t.Error("Ctrl+Alt+Shift+Esc did not release the keyboard")
	}
	xc.waitFor(t, "the modifiers released", 10*time.Second, func(evs []xEvent) bool {
		down := map[uint32]int{}
		for _, e := range evs {
			switch e.kind {
			case "key":
				down[e.keysym]++
				if e.keysym == 0xff1b {
					return false // Escape reached the device
				}
			case "keyup":
				down[e.keysym]--
			}
		}
		return len(evs) >= 6 && down[0xffe3] == 0 && down[0xffe9] <= 0 && down[0xffe1] == 0 // Control_L, Alt_L (or Meta), Shift_L
	})
	c.run(t, 5*time.Second,
		rawKey(input.DispatchKeyEventTypeKeyUp, "Escape", "Escape", 27, 0, ""),
		rawKey(input.DispatchKeyEventTypeKeyUp, "ShiftLeft", "Shift", 16, 0, ""),
		rawKey(input.DispatchKeyEventTypeKeyUp, "AltLeft", "Alt", 18, 0, ""),
		rawKey(input.DispatchKeyEventTypeKeyUp, "ControlLeft", "Control", 17, 0, ""),
	)
	// Not focused: keys stay in the browser.
	xc.reset()
	c.run(t, 5*time.Second, chromedp.KeyEvent("x"), chromedp.Sleep(300*time.Millisecond))
	for _, e := range xc.snapshot() {
		if e.kind == "key" {
			t.Fatalf("a key reached the device while the screen was not focused: %v", e)
		}
	}

	// The picture follows the screen.
	xc.paint([3]uint8{0, 0, 255})
	servertest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if px := eval[[][]int](t, c, pixelsJS); !nearColour(px[0], [3]uint8{0, 0, 255}) || !nearColour(px[3], [3]uint8{0, 0, 255}) {
			return fmt.Errorf("video still %v", px)
		}
		return nil
	})
	xc.paint(quadrants[:]...)

	// Stats: codec, path, and numbers once a second.
	c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=session-stats-toggle]`)), chromedp.WaitVisible(css(`[data-testid=session-stats]`)))
	servertest.CheckFor(t, 10*time.Second, 200*time.Millisecond, func() error {
		s := eval[map[string]string](t, c, `({...document.querySelector('[data-testid=session-stats]').dataset})`)
		if s["codec"] != "video/VP8" || s["path"] != "direct" || s["bitrate"] == "" || s["fps"] == "" || s["rtt"] == "" {
			return fmt.Errorf("stats %v", s)
		}
		return nil
	})
	c.screenshot(t, "remote-session.png")

	// 1:1 shows the screen's pixels one for one; fit brings it back.
	c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=session-scale]`)), chromedp.WaitVisible(css(`[data-testid=session-screen][data-scale="1:1"]`)))
	if w := eval[int](t, c, `document.querySelector('[data-testid=session-video]').clientWidth`); w != screenW {
		t.Errorf("at 1:1 the video is %d px wide, want %d", w, screenW)
	}
	xc.reset()
	c.run(t, 10*time.Second, chromedp.Evaluate[chromedp.Void](`document.querySelector('.session-scroll').scrollTo(200, 100)`))
	pt = eval[[]float64](t, c, clientPointJS(400, 300))
	c.run(t, 10*time.Second, chromedp.MouseClickXY(pt[0], pt[1]))
	xc.waitFor(t, "a click at 400,300 at 1:1, scrolled", 10*time.Second, func(evs []xEvent) bool {
		for _, e := range evs {
			if e.kind == "press" && e.button == 1 && abs(e.x-400) <= 1 && abs(e.y-300) <= 1 {
				return true
			}
		}
		return false
	})
	c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=session-scale]`)), chromedp.WaitVisible(css(`[data-testid=session-screen][data-scale=fit]`)))

	// End the session; starting again works (the device allows one at a time, so the first is gone).
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=session-end]`)),
		chromedp.WaitVisible(css(`[data-testid=session-state][data-state=ended][data-end=user]`)),
		chromedp.WaitVisible(css(`[data-testid=session-reconnect]`)),
		chromedp.Click(css(`[data-testid=session-reconnect]`)),
	)
	waitLive()
	firstFrame()

	// Relay only: the media goes through the relay's TURN server.
	c.run(t, 30*time.Second, chromedp.Navigate(c.url+"#/devices/"+st.DeviceID+"/session?relay=1"))
	waitLive()
	firstFrame()
	servertest.CheckFor(t, 10*time.Second, 200*time.Millisecond, func() error {
		if p := eval[string](t, c, `document.querySelector('[data-testid=session-stats]').dataset.path`); p != "relay" {
			return fmt.Errorf("path %q", p)
		}
		return nil
	})
	if tab := eval[string](t, c, `document.querySelector('[data-testid=session-screen]').tabIndex + ''`); tab != "-1" {
		t.Errorf("a view-only screen is focusable (tabIndex %s)", tab)
	}

	// The agent goes away: the session ends and says so, and the device page
	// disables the buttons with the reason.
	agent.Stop()
	c.run(t, 30*time.Second, chromedp.WaitVisible(state("ended")))
	if msg := eval[string](t, c, `document.querySelector('[data-testid=session-state]').textContent`); !strings.Contains(msg, "device") || strings.Contains(msg, "relay is unavailable") {
		t.Errorf("after the agent went away the page says %q, want that the device went away", msg)
	}
	c.run(t, 20*time.Second,
		chromedp.Navigate(c.url+"#/devices/"+st.DeviceID),
		chromedp.WaitVisible(css(`[data-testid=remote-control][disabled]`)),
	)
	if tip := eval[string](t, c, `document.querySelector('[data-testid=remote-control]').title`); !strings.Contains(tip, "offline") {
		t.Errorf("disabled Control button's tooltip %q does not say the device is offline", tip)
	}
}

func (c *xClient) snapshot() []xEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]xEvent(nil), c.events...)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

type staticInv struct{}

func (staticInv) Read(context.Context) (*desksidev1.Inventory, error) {
	return &desksidev1.Inventory{Hostname: "remote-desk", Memory: &desksidev1.Memory{TotalBytes: 8 << 30}}, nil
}

type staticHealth struct{}

func (staticHealth) Sample(context.Context) (*desksidev1.HealthSample, error) {
	return nil, errors.New("no health in this test")
}

// xSelection owns the CLIPBOARD selection on a second X connection and
// serves its text the way desktop programs do (TARGETS, UTF8_STRING,
// STRING; no INCR, so keep the text small): the agent's clipboard watcher
// sees a new owner and reads it.
type xSelection struct {
	x                              *xgb.Conn
	win                            xproto.Window
	clipboard, targets, utf8, incr xproto.Atom
	mu                             sync.Mutex
	text                           string
	done                           chan struct{}
}

func startXSelection(t *testing.T, display string) *xSelection {
	t.Helper()
	x, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatalf("connect to %s: %v", display, err)
	}
	s := &xSelection{x: x, done: make(chan struct{})}
	t.Cleanup(func() {
		x.Close()
		<-s.done
	})
	for _, a := range []struct {
		name string
		dst  *xproto.Atom
	}{{"CLIPBOARD", &s.clipboard}, {"TARGETS", &s.targets}, {"UTF8_STRING", &s.utf8}, {"INCR", &s.incr}} {
		r, err := xproto.InternAtom(x, false, uint16(len(a.name)), a.name).Reply()
		if err != nil {
			t.Fatal(err)
		}
		*a.dst = r.Atom
	}
	scr := xproto.Setup(x).DefaultScreen(x)
	if s.win, err = xproto.NewWindowId(x); err != nil {
		t.Fatal(err)
	}
	if err := xproto.CreateWindowChecked(x, 0, s.win, scr.Root, 0, 0, 1, 1, 0, xproto.WindowClassInputOnly, 0, 0, nil).Check(); err != nil {
		t.Fatal(err)
	}
	go s.loop()
	return s
}

// set makes this client the CLIPBOARD owner with text.
func (s *xSelection) set(t *testing.T, text string) {
	t.Helper()
	s.mu.Lock()
	s.text = text
	s.mu.Unlock()
	if err := xproto.SetSelectionOwnerChecked(s.x, s.win, s.clipboard, xproto.TimeCurrentTime).Check(); err != nil {
		t.Fatal(err)
	}
}

func (s *xSelection) loop() {
	defer close(s.done)
	for {
		ev, err := s.x.WaitForEvent()
		if ev == nil && err == nil {
			return
		}
		r, ok := ev.(xproto.SelectionRequestEvent)
		if !ok || r.Selection != s.clipboard {
			continue
		}
		prop := r.Property
		if prop == xproto.AtomNone {
			prop = r.Target // an obsolete requestor
		}
		s.mu.Lock()
		text := s.text
		s.mu.Unlock()
		switch r.Target {
		case s.targets:
			atoms := []xproto.Atom{s.targets, s.utf8, xproto.AtomString}
			buf := make([]byte, 4*len(atoms))
			for i, a := range atoms {
				xgb.Put32(buf[4*i:], uint32(a))
			}
			xproto.ChangeProperty(s.x, xproto.PropModeReplace, r.Requestor, prop, xproto.AtomAtom, 32, uint32(len(atoms)), buf)
		case s.utf8, xproto.AtomString:
			xproto.ChangeProperty(s.x, xproto.PropModeReplace, r.Requestor, prop, r.Target, 8, uint32(len(text)), []byte(text))
		default:
			prop = xproto.AtomNone // refused
		}
		n := xproto.SelectionNotifyEvent{Time: r.Time, Requestor: r.Requestor, Selection: r.Selection, Target: r.Target, Property: prop}
		xproto.SendEvent(s.x, false, r.Requestor, 0, string(n.Bytes()))
	}
}
