package desktop_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop"
	"github.com/deskside/deskside/agent/desktop/banner"
	"github.com/deskside/deskside/agent/desktop/internal/xvfb"
	"github.com/deskside/deskside/agent/desktop/session"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// bannerWindow returns the id of the window named exactly name ("" if none).
func bannerWindow(d xdisp, name string) string {
	out, err := xdotool(d, "search", "--name", "^"+strings.ReplaceAll(name, ".", `\.`)+"$")
	if err != nil {
		return ""
	}
	return strings.Fields(out)[0]
}

// clickWindow clicks the middle of window id (by XTEST, through xdotool).
func clickWindow(t *testing.T, d xdisp, id string) {
	t.Helper()
	w, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	// xdotool's getwindowgeometry is off for child windows: ask the server.
	x, err := xgb.NewConnDisplay(d.display)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	g, err := xproto.GetGeometry(x, xproto.Drawable(w)).Reply()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := xproto.TranslateCoordinates(x, xproto.Window(w), xproto.Setup(x).DefaultScreen(x).Root, 0, 0).Reply()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xdotool(d, "mousemove", strconv.Itoa(int(tr.DstX)+int(g.Width)/2), strconv.Itoa(int(tr.DstY)+int(g.Height)/2), "click", "1"); err != nil {
		t.Fatalf("click: %v", err)
	}
}

// TestBannerEndsTheSession: a running session shows the banner; its End
// session button ends the session at once, and the banner goes with it.
func TestBannerEndsTheSession(t *testing.T) {
	xs := xvfb.StartWith(t, xvfb.Config{Width: 1280, Height: 720})
	d := xdisp{display: xs.Display}
	mgr := desktop.NewManager(desktop.Options{Display: xs.Display, Logger: servertest.DiscardLogger()})
	for _, control := range []bool{false, true} {
		what := "viewing"
		if control {
			what = "controlling"
		}
		t.Run(what, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			done := make(chan string, 1)
			go func() {
				done <- mgr.Run(ctx, &desksidev1.StartDesktop{SessionId: "s-" + what, Control: control, TechnicianName: "alice",
					PolicyMode: desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED},
					func(*desksidev1.DesktopSignal) error { return nil })
			}()
			name := banner.Title + ": alice is " + what + " your screen"
			var win string
			servertest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
				if win = bannerWindow(d, name); win == "" {
					select {
					case r := <-done:
						t.Fatalf("the session ended before showing the banner: %s", r)
					default:
					}
					return errNoBanner
				}
				return nil
			})
			btn := bannerWindow(d, banner.ButtonLabel)
			if btn == "" {
				t.Fatal("the banner has no End session button")
			}
			start := time.Now()
			clickWindow(t, d, btn)
			select {
			case r := <-done:
				t.Logf("click on End session → session ended: %v", time.Since(start))
				if r != session.ReasonEndedByUser {
					t.Errorf("the session ended with %q, want %q", r, session.ReasonEndedByUser)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the session still runs 5 s after a click on End session")
			}
			if w := bannerWindow(d, name); w != "" {
				t.Errorf("the banner %s is still shown after the session ended", w)
			}
			if n := mgr.Sessions(); n != 0 {
				t.Errorf("%d sessions still running", n)
			}
		})
	}
}

var errNoBanner = errors.New("no banner window yet")
