package desktop_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/desktop"
	"github.com/deskside/deskside/agent/desktop/capture"
	"github.com/deskside/deskside/agent/desktop/consent"
	"github.com/deskside/deskside/agent/desktop/internal/testclient"
	"github.com/deskside/deskside/agent/desktop/internal/viewertest"
	"github.com/deskside/deskside/agent/desktop/internal/xvfb"
	"github.com/deskside/deskside/agent/desktop/session"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
)

// promptWindow waits for the consent prompt (or notice) on display and
// returns its window id and the command line of the program showing it.
func promptWindow(t testing.TB, display xdisp, timeout time.Duration) (string, string, int) {
	t.Helper()
	var win, cmdline string
	var pidN int
	servertest.CheckFor(t, timeout, 50*time.Millisecond, func() error {
		out, err := xdotool(display, "search", "--name", consent.Title)
		if err != nil {
			return fmt.Errorf("no prompt window: %v", err)
		}
		// GTK may name more than one window so; the prompt has a pid.
		for _, w := range strings.Fields(out) {
			pid, err := xdotool(display, "getwindowpid", w)
			if err != nil {
				continue
			}
			b, err := os.ReadFile("/proc/" + strings.TrimSpace(pid) + "/cmdline")
			if err != nil {
				continue
			}
			win, cmdline = w, strings.ReplaceAll(string(b), "\x00", " ")
			pidN, _ = strconv.Atoi(strings.TrimSpace(pid))
			return nil
		}
		return fmt.Errorf("windows %q, none with a pid yet", out)
	})
	return win, cmdline, pidN
}

// noPrompt reports a consent window on display.
func noPrompt(t *testing.T, display xdisp) {
	t.Helper()
	if out, err := xdotool(display, "search", "--name", consent.Title); err == nil {
		t.Errorf("a consent window is shown: %s", out)
	}
}

// xdisp is an X display and its Xauthority file ("": $XAUTHORITY).
type xdisp struct{ display, auth string }

func xdotool(d xdisp, args ...string) (string, error) {
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+d.display)
	if d.auth != "" {
		cmd.Env = append(cmd.Env, "XAUTHORITY="+d.auth)
	}
	out, err := cmd.Output()
	return string(out), err
}

// answer focuses the prompt and presses keys in it, as the user would.
func answer(t testing.TB, display xdisp, win string, keys ...string) {
	t.Helper()
	if out, err := xdotool(display, append([]string{"windowfocus", "--sync", win, "key", "--clearmodifiers"}, keys...)...); err != nil {
		t.Fatalf("xdotool key %v: %v %s", keys, err, out)
	}
}

func waitEnded(t *testing.T, v *viewer, want string) {
	t.Helper()
	select {
	case r := <-v.Ended:
		if !strings.Contains(r, want) {
			t.Fatalf("session ended with %q, want %q", r, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the session did not end (want %q)", want)
	}
}

func auditDetail(t *testing.T, r *servertest.Relay, action, device string) []string {
	t.Helper()
	evs, err := r.Srv.Store().ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.Action == action && e.Target == device {
			out = append(out, e.Detail)
		}
	}
	return out
}

// TestConsent: an attended session asks the user with the real zenity
// dialog on an X server, answered with xdotool: Allow starts the session
// and frames flow; Deny and no answer end it before any offer; an
// unattended device does not ask, and one with notice only tells.
func TestConsent(t *testing.T) {
	const timeout = 6 * time.Second
	X, r, mgr, cs, ctx, device := consentDesk(t, timeout)

	// idle waits for the agent's session to end (one at a time).
	idle := func(t *testing.T) {
		t.Helper()
		servertest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
			if n := mgr.Sessions(); n != 0 {
				return fmt.Errorf("%d sessions", n)
			}
			return nil
		})
	}

	t.Run("allow", func(t *testing.T) {
		tks := desksidev1.NewTicketServiceClient(r.Dial(t))
		tk, err := tks.CreateTicket(ctx, &desksidev1.CreateTicketRequest{
			Requester: &desksidev1.TicketRequester{Name: "Sam"}, Subject: "Screen flickers"})
		if err != nil {
			t.Fatal(err)
		}
		code := tk.GetTicket().GetCode()
		v, err := openViewerWith(t, cs, ctx, device, viewerOptions{ticket: code})
		if err != nil {
			t.Fatal(err)
		}
		win, cmdline, _ := promptWindow(t, X, 15*time.Second)
		if want := "admin (tier 3) wants to control your screen for ticket " + code; !strings.Contains(cmdline, want) {
			t.Errorf("prompt %q does not say %q", cmdline, want)
		}
		if n := v.Offers.Load(); n != 0 {
			t.Fatalf("%d offer(s) before the user answered", n)
		}
		screenshot(t, X.display, "consent-prompt.png")
		answer(t, X, win, "alt+a")
		f := v.frame(20 * time.Second)
		if r, g, b := f.RGB(f.Width/4, f.Height/4); !near(r, testclient.DefaultQuadrants[0].R) || !near(g, testclient.DefaultQuadrants[0].G) || !near(b, testclient.DefaultQuadrants[0].B) {
			t.Errorf("first frame: %d,%d,%d", r, g, b)
		}
		v.Close()
		servertest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
			if got := auditDetail(t, r, "desktop.consent", device); len(got) != 1 || !strings.Contains(got[0], "allowed by the user") {
				return fmt.Errorf("consent audit %q", got)
			}
			return nil
		})
		if got := auditDetail(t, r, "desktop.start", device); len(got) != 1 || !strings.Contains(got[0], "ticket "+code) || !strings.Contains(got[0], "attended") {
			t.Errorf("start audit %q", got)
		}
		// The answer is on the ticket's timeline.
		got, err := tks.GetTicket(ctx, &desksidev1.GetTicketRequest{Code: code})
		if err != nil {
			t.Fatal(err)
		}
		noted := false
		for _, e := range got.GetTimeline() {
			noted = noted || strings.Contains(e.GetBody(), "Remote control session on "+device+": allowed by the user")
		}
		if !noted {
			t.Errorf("the ticket's timeline lacks the answer: %v", got.GetTimeline())
		}
		idle(t)
	})

	t.Run("deny", func(t *testing.T) {
		v, err := openViewerWith(t, cs, ctx, device, viewerOptions{viewOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		win, cmdline, _ := promptWindow(t, X, 15*time.Second)
		if !strings.Contains(cmdline, "wants to view your screen") {
			t.Errorf("view-only prompt %q", cmdline)
		}
		answer(t, X, win, "Escape")
		waitEnded(t, v, session.ReasonDenied)
		if n := v.Offers.Load(); n != 0 {
			t.Errorf("%d offer(s) after a denial", n)
		}
		servertest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
			got := auditDetail(t, r, "desktop.consent", device)
			if len(got) != 2 || !strings.Contains(got[0]+got[1], "denied by the user") {
				return fmt.Errorf("consent audit %q", got)
			}
			return nil
		})
		// Return denies too: typing into the desktop cannot allow.
		v, err = openViewerWith(t, cs, ctx, device, viewerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		win, _, _ = promptWindow(t, X, 15*time.Second)
		answer(t, X, win, "Return")
		waitEnded(t, v, session.ReasonDenied)
	})

	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		v, err := openViewerWith(t, cs, ctx, device, viewerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		promptWindow(t, X, 15*time.Second)
		waitEnded(t, v, session.ReasonNoAnswer)
		// (zenity's own timer counts whole seconds, and may end up to one
		// early.)
		if d := time.Since(start); d < timeout-time.Second {
			t.Errorf("no answer after %s, before the %s timeout", d, timeout)
		}
		if n := v.Offers.Load(); n != 0 {
			t.Errorf("%d offer(s) without an answer", n)
		}
		servertest.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
			if out, err := xdotool(X, "search", "--name", consent.Title); err == nil {
				return fmt.Errorf("the prompt stays after its timeout: %s", out)
			}
			return nil
		})
	})

	t.Run("unattended", func(t *testing.T) {
		if _, err := cs.SetDevicePolicy(ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: device, Mode: desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED.Enum()}); err != nil {
			t.Fatal(err)
		}
		v, err := openViewerWith(t, cs, ctx, device, viewerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v.frame(20 * time.Second)
		noPrompt(t, X)
		v.Close()
		idle(t)
	})

	t.Run("notice", func(t *testing.T) {
		if _, err := cs.SetDevicePolicy(ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: device, Mode: desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED_NOTICE.Enum()}); err != nil {
			t.Fatal(err)
		}
		v, err := openViewerWith(t, cs, ctx, device, viewerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v.frame(20 * time.Second)
		// No notification daemon on this X server: the notice is a window
		// that closes by itself.
		win, cmdline, _ := promptWindow(t, X, 15*time.Second)
		if !strings.Contains(cmdline, "admin (tier 3) is now controlling your screen") {
			t.Errorf("notice %q", cmdline)
		}
		answer(t, X, win, "Return")
		v.Close()
		servertest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
			got := strings.Join(auditDetail(t, r, "desktop.consent", device), "|")
			if !strings.Contains(got, "the user was notified") {
				return fmt.Errorf("consent audit %q", got)
			}
			return nil
		})
	})
}

// TestServiceAsksTheConsoleUser: with the agent as a root service, the
// prompt runs in the helper, as the console user (another uid) on their
// display; Allow starts the session.
func TestServiceAsksTheConsoleUser(t *testing.T) {
	_, err := exec.LookPath("zenity")
	testkit.Need(t, "zenity", err, "apt-get install zenity (make deps)")
	d := newServiceDesk(t, 800, 600)
	if _, err := d.cs.SetDevicePolicy(d.ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: d.device, Mode: desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED.Enum()}); err != nil {
		t.Fatal(err)
	}
	X := xdisp{display: d.xs.display, auth: d.xs.auth}
	v, err := openViewerWith(t, d.cs, d.ctx, d.device, viewerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	win, cmdline, pid := promptWindow(t, X, 30*time.Second)
	if !strings.Contains(cmdline, "admin (tier 3) wants to control your screen") || !strings.Contains(cmdline, "--timeout 45 ") {
		t.Errorf("prompt %q, want the service's 45 s timeout", cmdline)
	}
	if uid := strings.Fields(procField(pid, "Uid") + " ?")[0]; uid != strconv.Itoa(consoleUID) {
		t.Errorf("the prompt runs as uid %s, want the console user's %d", uid, consoleUID)
	}
	if n := v.Offers.Load(); n != 0 {
		t.Fatalf("%d offer(s) before the answer", n)
	}
	answer(t, X, win, "alt+a")
	if f := v.frame(30 * time.Second); f.Width != 800 {
		t.Fatalf("frame %dx%d", f.Width, f.Height)
	}
}

// consentDesk is an attended device whose agent runs its sessions in
// process on an Xvfb showing the test picture, with a relay; the prompt
// times out after timeout.
func consentDesk(t testing.TB, timeout time.Duration) (xdisp, *servertest.Relay, *session.Manager, desksidev1.ConsoleServiceClient, context.Context, string) {
	for _, p := range []string{"zenity", "xdotool"} {
		_, err := exec.LookPath(p)
		testkit.Need(t, p, err, "apt-get install "+p+" (make deps)")
	}
	xs := xvfb.StartWith(t, xvfb.Config{Width: 1024, Height: 600})
	X := xdisp{display: xs.Display}
	tc, err := testclient.Start(xs.Display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	r := servertest.Start(t, servertest.Options{})
	st := r.Enroll(t, "consent-desk")
	mgr := desktop.NewManager(desktop.Options{Display: xs.Display, Logger: servertest.DiscardLogger(), ConsentTimeout: timeout})
	servertest.RunAgent(t, st, servertest.AgentOptions{Inventory: staticInventory{}, Health: staticHealth{}, Desktop: mgr})
	cs, ctx := r.Admin(t)
	servertest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
		if err != nil || !d.GetDevice().GetOnline() {
			return fmt.Errorf("agent not online")
		}
		return nil
	})

	return X, r, mgr, cs, ctx, st.DeviceID
}

// BenchmarkConsentToFirstFrame measures "consent answered → first frame
// at the viewer": from the Allow keypress to the viewer's first decoded
// frame (the offer, ICE, DTLS, a key frame), in process on a 1024×600
// Xvfb.
func BenchmarkConsentToFirstFrame(b *testing.B) {
	X, _, mgr, cs, ctx, device := consentDesk(b, 30*time.Second)
	var total time.Duration
	for b.Loop() {
		v, err := viewertest.Open(b, cs, ctx, device, viewertest.Options{Quiet: true, Control: true})
		if err != nil {
			b.Fatal(err)
		}
		win, _, _ := promptWindow(b, X, 15*time.Second)
		answered := time.Now()
		answer(b, X, win, "alt+a")
		first, err := v.FirstFrame(20 * time.Second)
		if err != nil {
			b.Fatal(err)
		}
		total += first.Sub(answered)
		v.Close()
		servertest.CheckFor(b, 10*time.Second, 20*time.Millisecond, func() error {
			if n := mgr.Sessions(); n != 0 {
				return fmt.Errorf("%d sessions", n)
			}
			return nil
		})
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/answer-to-frame")
}

// screenshot writes the X screen as a PNG to $DESKSIDE_SCREENSHOTS/name
// (the README's images come from `make screenshots`); nothing without it.
func screenshot(t *testing.T, display, name string) {
	t.Helper()
	dir := os.Getenv("DESKSIDE_SCREENSHOTS")
	if dir == "" {
		return
	}
	time.Sleep(300 * time.Millisecond) // the prompt draws itself
	c, err := capture.Open(display, servertest.DiscardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.Capture()
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, f.Width, f.Height))
	for y := range f.Height {
		for x := range f.Width {
			p := f.Pix[y*f.Stride+4*x:]
			img.Set(x, y, color.RGBA{R: p[2], G: p[1], B: p[0], A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
