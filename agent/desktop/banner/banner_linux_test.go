package banner_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop/banner"
	"github.com/deskside/deskside/agent/desktop/internal/testclient"
	"github.com/deskside/deskside/agent/desktop/internal/xvfb"
	"github.com/deskside/deskside/internal/testkit"
)

func xdotool(display string, args ...string) (string, error) {
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// findWindow returns the id of the window named exactly name, or "".
func findWindow(t testing.TB, display, name string) string {
	t.Helper()
	out, err := xdotool(display, "search", "--name", "^"+regexpQuote(name)+"$")
	if err != nil {
		return ""
	}
	return strings.Fields(out)[0]
}

func regexpQuote(s string) string {
	r := strings.NewReplacer(".", `\.`, "(", `\(`, ")", `\)`, "?", `\?`, "*", `\*`, "+", `\+`)
	return r.Replace(s)
}

// clickButton clicks the centre of the banner's End session button.
func clickButton(t testing.TB, display string) {
	t.Helper()
	btn := findWindow(t, display, banner.ButtonLabel)
	if btn == "" {
		t.Fatal("no End session button on the screen")
	}
	id, err := strconv.ParseUint(btn, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	// xdotool's getwindowgeometry is off for child windows: ask the server.
	x, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	root := xproto.Setup(x).DefaultScreen(x).Root
	g, err := xproto.GetGeometry(x, xproto.Drawable(id)).Reply()
	if err != nil {
		t.Fatalf("geometry of the button: %v", err)
	}
	tr, err := xproto.TranslateCoordinates(x, xproto.Window(id), root, 0, 0).Reply()
	if err != nil {
		t.Fatalf("position of the button: %v", err)
	}
	if _, err := xdotool(display, "mousemove", strconv.Itoa(int(tr.DstX)+int(g.Width)/2), strconv.Itoa(int(tr.DstY)+int(g.Height)/2), "click", "1"); err != nil {
		t.Fatalf("click: %v", err)
	}
}

func TestBannerShowsAndEnds(t *testing.T) {
	_, err := exec.LookPath("xdotool")
	testkit.Need(t, "xdotool", err, "make deps (installs xdotool)")
	s := xvfb.Start(t)
	var ended atomic.Int32
	endc := make(chan time.Time, 1)
	text := "alice is controlling your screen"
	b, err := banner.Open(banner.Config{Display: s.Display, Text: text, OnEnd: func() {
		if ended.Add(1) == 1 {
			endc <- time.Now()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	name := banner.Title + ": " + text
	win := findWindow(t, s.Display, name)
	if win == "" {
		t.Fatalf("no window named %q", name)
	}
	// At the top of the screen, in view.
	out, err := xdotool(s.Display, "getwindowgeometry", "--shell", win)
	if err != nil || !strings.Contains(out, "Y=0") {
		t.Errorf("banner geometry %q (%v), want it at the top", out, err)
	}
	start := time.Now()
	clickButton(t, s.Display)
	select {
	case at := <-endc:
		t.Logf("click → OnEnd: %v", at.Sub(start))
	case <-time.After(5 * time.Second):
		t.Fatal("OnEnd not called after a click on End session")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if w := findWindow(t, s.Display, name); w != "" {
		t.Errorf("the banner %s is still on the screen after Close", w)
	}
	if w := findWindow(t, s.Display, banner.ButtonLabel); w != "" {
		t.Errorf("the button %s is still on the screen after Close", w)
	}
	if n := ended.Load(); n != 1 {
		t.Errorf("OnEnd called %d times", n)
	}
}

func TestBannerNoDisplay(t *testing.T) {
	_, err := banner.Open(banner.Config{Display: ":199", Text: "x"})
	if err == nil {
		t.Fatal("Open on a display that does not exist succeeded")
	}
	t.Log(err)
}

// TestBannerOnThePrimaryMonitor: with two monitors the bar sits in the
// middle of the primary one, not astride both.
func TestBannerOnThePrimaryMonitor(t *testing.T) {
	_, err := exec.LookPath("xdotool")
	testkit.Need(t, "xdotool", err, "make deps (installs xdotool)")
	s := xvfb.StartWith(t, xvfb.Config{Width: 1920, Height: 1080})
	tc, err := testclient.Start(s.Display)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	skip := tc.AddMonitors([]testclient.Monitor{
		{Name: "LEFT", X: 0, Y: 0, W: 960, H: 1080},
		{Name: "RIGHT", X: 960, Y: 0, W: 960, H: 1080, Primary: true},
	})
	testkit.Need(t, "RandR 1.5 monitors in Xvfb", skip, "install Debian 12's xvfb or newer (make deps)")
	b, err := banner.Open(banner.Config{Display: s.Display, Text: "alice is viewing your screen"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	win := findWindow(t, s.Display, banner.Title+": alice is viewing your screen")
	if win == "" {
		t.Fatal("no banner window")
	}
	out, err := xdotool(s.Display, "getwindowgeometry", "--shell", win)
	if err != nil {
		t.Fatal(err)
	}
	g := map[string]int{}
	for _, l := range strings.Fields(out) {
		k, v, _ := strings.Cut(l, "=")
		g[k], _ = strconv.Atoi(v)
	}
	if mid := g["X"] + g["WIDTH"]/2; g["Y"] != 0 || mid < 1440-1 || mid > 1440+1 {
		t.Errorf("banner at %d,%d width %d (middle %d), want the top middle of RIGHT (1440)", g["X"], g["Y"], g["WIDTH"], mid)
	}
}

// TestBannerDrawsNonLatinNames: a technician's name in Cyrillic or Greek
// is drawn as such, not as question marks (the Unicode "fixed" font).
func TestBannerDrawsNonLatinNames(t *testing.T) {
	_, err := exec.LookPath("xdotool")
	testkit.Need(t, "xdotool", err, "make deps (installs xdotool)")
	s := xvfb.Start(t)
	x, err := xgb.NewConnDisplay(s.Display)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	// pixels are the bar's first five character cells, as drawn.
	pixels := func(text string) []byte {
		t.Helper()
		b, err := banner.Open(banner.Config{Display: s.Display, Text: text})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		var img []byte
		deadline := time.Now().Add(10 * time.Second)
		for {
			// (xdotool matches WM_NAME, Latin-1: the name's end.)
			if out, err := xdotool(s.Display, "search", "--name", " is viewing your screen$"); err == nil && out != "" {
				id, _ := strconv.ParseUint(strings.Fields(out)[0], 10, 32)
				r, err := xproto.GetImage(x, xproto.ImageFormatZPixmap, xproto.Drawable(id), 8, 2, 30, 18, ^uint32(0)).Reply()
				if err == nil && strings.Trim(string(r.Data), string(r.Data[:1])) != "" {
					img = r.Data
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the banner %q drew nothing", text)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return img
	}
	cyr := pixels("Алёна is viewing your screen")
	qm := pixels("????? is viewing your screen")
	lat := pixels("Alena is viewing your screen")
	if string(cyr) == string(qm) {
		t.Error("a Cyrillic name is drawn as question marks")
	}
	if string(cyr) == string(lat) {
		t.Error("a Cyrillic name is drawn as its Latin look-alike")
	}
}
