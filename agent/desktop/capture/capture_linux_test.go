package capture

import (
	"bufio"
	"errors"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/res"
	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop/internal/testclient"
	"github.com/deskside/deskside/agent/desktop/internal/xconn"
	"github.com/deskside/deskside/agent/desktop/internal/xvfb"
	"github.com/deskside/deskside/internal/testkit"
	"github.com/deskside/deskside/internal/testpoll"
)

const waitTimeout = 10 * time.Second

var checkFor = testpoll.CheckFor

// setup starts an Xvfb (with extra server arguments), the test client
// and a Capturer, all stopped when t ends.
func setup(t testing.TB, args ...string) (*xvfb.Server, *testclient.Client, *x11Capturer) {
	t.Helper()
	s := xvfb.StartWith(t, xvfb.Config{Args: args})
	cl, err := testclient.Start(s.Display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	c, err := Open(s.Display, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s, cl, c.(*x11Capturer)
}

// settle captures until a Capture reports no change, and returns that
// frame's Seq.
func settle(t testing.TB, c Capturer) uint64 {
	t.Helper()
	// Quiet for three captures in a row, 20 ms apart: on a loaded machine
	// the X server may still be drawing what the client sent after one
	// unchanged capture (a CI flake).
	var seq uint64
	quiet := 0
	checkFor(t, waitTimeout, 20*time.Millisecond, func() error {
		f, err := c.Capture()
		if err != nil {
			t.Fatal(err)
		}
		if f.Changed {
			quiet = 0
			return errors.New("screen still changing")
		}
		if quiet++; quiet < 3 {
			return errors.New("not quiet long enough")
		}
		seq = f.Seq
		return nil
	})
	return seq
}

// captureChanged captures until a Capture reports a change.
func captureChanged(t testing.TB, c Capturer) *Frame {
	t.Helper()
	var f *Frame
	checkFor(t, waitTimeout, time.Millisecond, func() error {
		var err error
		if f, err = c.Capture(); err != nil {
			t.Fatal(err)
		}
		if !f.Changed {
			return errors.New("no change seen")
		}
		return nil
	})
	return f
}

// bgra returns the pixel at (x, y) of f.
func bgra(f *Frame, x, y int) [3]byte {
	i := y*f.Stride + x*4
	return [3]byte{f.Pix[i], f.Pix[i+1], f.Pix[i+2]}
}

func bgr(c color.RGBA) [3]byte { return [3]byte{c.B, c.G, c.R} }

var (
	red   = testclient.DefaultQuadrants[0]
	green = testclient.DefaultQuadrants[1]
	blue  = testclient.DefaultQuadrants[2]
	white = testclient.DefaultQuadrants[3]
)

// checkPattern checks the test client's quadrants in a whole-screen frame.
func checkPattern(t *testing.T, f *Frame) {
	t.Helper()
	for _, p := range []struct {
		x, y int
		want color.RGBA
	}{
		{0, 0, red}, {480, 270, red}, {959, 539, red},
		{960, 0, green}, {1440, 270, green}, {1919, 539, green},
		{0, 540, blue}, {480, 810, blue}, {959, 1079, blue},
		{960, 540, white}, {1440, 810, white}, {1919, 1079, white},
	} {
		if got := bgra(f, p.x, p.y); got != bgr(p.want) {
			t.Errorf("pixel (%d,%d) = BGR %v, want %v", p.x, p.y, got, bgr(p.want))
		}
	}
}

func TestMonitors(t *testing.T) {
	_, _, c := setup(t)
	mons, err := c.Monitors()
	if err != nil {
		t.Fatal(err)
	}
	if len(mons) != 1 {
		t.Fatalf("Monitors() = %+v, want one", mons)
	}
	m := mons[0]
	if m.ID != 0 || m.X != 0 || m.Y != 0 || m.Width != 1920 || m.Height != 1080 || !m.Primary || m.Name == "" {
		t.Errorf("Monitors()[0] = %+v, want a primary 1920x1080 monitor at 0,0", m)
	}
	for _, tt := range []struct {
		id      int
		wantErr error
	}{{0, nil}, {WholeScreen, nil}, {1, ErrNoSuchMonitor}, {-2, ErrNoSuchMonitor}} {
		if err := c.Select(tt.id); !errors.Is(err, tt.wantErr) {
			t.Errorf("Select(%d) = %v, want %v", tt.id, err, tt.wantErr)
		}
	}
}

// TestCapture runs the capture checks over each grab and change-detection
// path, disabling extensions in the server to reach the fallbacks.
func TestCapture(t *testing.T) {
	for _, tt := range []struct {
		name       string
		args       []string
		wantGrab   string
		wantChange string
	}{
		{"mit-shm and damage", nil, GrabSHM, ChangeDamage},
		{"getimage fallback", []string{"-extension", "MIT-SHM"}, GrabGetImage, ChangeDamage},
		{"compare fallback", []string{"-extension", "DAMAGE"}, GrabSHM, ChangeCompare},
		{"no extensions", []string{"-extension", "MIT-SHM", "-extension", "DAMAGE"}, GrabGetImage, ChangeCompare},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, cl, c := setup(t, tt.args...)
			if info := c.Info(); info.Grab != tt.wantGrab || info.Change != tt.wantChange || info.Backend != "x11" {
				t.Fatalf("Info() = %+v, want grab %s, change %s", info, tt.wantGrab, tt.wantChange)
			}

			f, err := c.Capture()
			if err != nil {
				t.Fatal(err)
			}
			if !f.Changed || f.Seq != 1 {
				t.Errorf("first Capture: Changed=%v Seq=%d, want true 1", f.Changed, f.Seq)
			}
			if f.Width != 1920 || f.Height != 1080 || f.Stride != 1920*4 || len(f.Pix) != 1920*1080*4 {
				t.Fatalf("frame %dx%d stride %d len %d", f.Width, f.Height, f.Stride, len(f.Pix))
			}
			checkPattern(t, f)

			// An idle screen: no change, twice in a row, same Seq.
			seq := settle(t, c)
			for i := range 2 {
				f, err := c.Capture()
				if err != nil {
					t.Fatal(err)
				}
				if f.Changed || f.Seq != seq {
					t.Fatalf("idle Capture %d: Changed=%v Seq=%d, want false %d", i, f.Changed, f.Seq, seq)
				}
			}

			// A colour change.
			if err := cl.SetColor(10, 20, 30); err != nil {
				t.Fatal(err)
			}
			checkFor(t, waitTimeout, time.Millisecond, func() error {
				f, err := c.Capture()
				if err != nil {
					t.Fatal(err)
				}
				if f.Changed && f.Seq <= seq {
					t.Fatalf("Changed with Seq %d, last %d", f.Seq, seq)
				}
				if got := bgra(f, 1919, 1079); got != [3]byte{30, 20, 10} {
					return fmt.Errorf("bottom-right pixel BGR %v", got)
				}
				return nil
			})
			f, _ = c.Capture()
			for _, p := range [][2]int{{0, 0}, {960, 540}, {100, 1000}} {
				if got := bgra(f, p[0], p[1]); got != [3]byte{30, 20, 10} {
					t.Errorf("pixel %v = BGR %v after SetColor", p, got)
				}
			}

			// A small change: only its rows are fetched with DAMAGE; the
			// rest of the frame must still be right.
			seq = settle(t, c)
			small := color.RGBA{R: 200, G: 100, B: 50}
			if err := cl.FillRect(300, 400, 20, 10, small); err != nil {
				t.Fatal(err)
			}
			f = captureChanged(t, c)
			if f.Seq != seq+1 {
				t.Errorf("Seq = %d after one change, want %d", f.Seq, seq+1)
			}
			if got := bgra(f, 310, 405); got != bgr(small) {
				t.Errorf("changed pixel = BGR %v, want %v", got, bgr(small))
			}
			for _, p := range [][2]int{{299, 405}, {320, 405}, {310, 399}, {310, 410}, {0, 0}, {1919, 1079}} {
				if got := bgra(f, p[0], p[1]); got != [3]byte{30, 20, 10} {
					t.Errorf("pixel %v = BGR %v next to the change", p, got)
				}
			}
		})
	}
}

// TestSelectMonitor splits the screen into two RandR monitors and
// captures the right one.
func TestSelectMonitor(t *testing.T) {
	s, cl, c := setup(t)
	addMonitors(t, s.Display, [][4]int{{0, 0, 960, 1080}, {960, 0, 960, 1080}})
	mons, err := c.Monitors()
	if err != nil {
		t.Fatal(err)
	}
	right := -1
	for _, m := range mons {
		if m.X == 960 && m.Width == 960 && m.Height == 1080 {
			right = m.ID
		}
	}
	if right < 0 {
		t.Fatalf("Monitors() = %+v, no monitor at x=960", mons)
	}
	if err := c.Select(right); err != nil {
		t.Fatal(err)
	}
	f, err := c.Capture()
	if err != nil {
		t.Fatal(err)
	}
	if !f.Changed || f.Width != 960 || f.Height != 1080 {
		t.Fatalf("Capture after Select: Changed=%v %dx%d", f.Changed, f.Width, f.Height)
	}
	if f.X != 960 || f.Y != 0 || f.Monitor != right {
		t.Errorf("Capture after Select: origin %d,%d monitor %d; want 960,0 and %d", f.X, f.Y, f.Monitor, right)
	}
	if got := bgra(f, 0, 0); got != bgr(green) {
		t.Errorf("monitor pixel (0,0) = BGR %v, want green", got)
	}
	if got := bgra(f, 959, 1079); got != bgr(white) {
		t.Errorf("monitor pixel (959,1079) = BGR %v, want white", got)
	}

	// Damage on the other monitor does not count as a change.
	settle(t, c)
	if err := cl.FillRect(100, 100, 50, 50, color.RGBA{R: 1}); err != nil {
		t.Fatal(err)
	}
	if err := cl.FillRect(1000, 100, 50, 50, color.RGBA{G: 1}); err != nil {
		t.Fatal(err)
	}
	f = captureChanged(t, c)
	if got := bgra(f, 1000-960+10, 110); got != [3]byte{0, 1, 0} {
		t.Errorf("changed pixel = BGR %v", got)
	}
	settle(t, c)
	if err := cl.FillRect(100, 100, 50, 50, color.RGBA{R: 2}); err != nil {
		t.Fatal(err)
	}
	// Once the damage has arrived, Capture must ignore it.
	waitDamage(t, c)
	if f, err := c.Capture(); err != nil || f.Changed {
		t.Fatalf("Capture after damage on the other monitor: Changed=%v, %v", f != nil && f.Changed, err)
	}
}

// waitDamage waits until the capturer has received some damage.
func waitDamage(t testing.TB, c *x11Capturer) {
	t.Helper()
	checkFor(t, waitTimeout, time.Millisecond, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.pollEvents()
		if c.damaged.Empty() {
			return errors.New("no damage received")
		}
		return nil
	})
}

// addMonitors defines RandR monitors (x, y, w, h) on display.
func addMonitors(t *testing.T, display string, rects [][4]int) {
	t.Helper()
	conn, err := xconn.Dial(display, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := randr.QueryVersion(conn.X, 1, 5).Reply(); err != nil {
		t.Fatal(err)
	}
	for i, r := range rects {
		name := fmt.Sprintf("TEST-%d", i)
		atom, err := xproto.InternAtom(conn.X, false, uint16(len(name)), name).Reply()
		if err != nil {
			t.Fatal(err)
		}
		err = randr.SetMonitorChecked(conn.X, conn.Root, randr.MonitorInfo{
			Name: atom.Atom, Primary: i == 0, X: int16(r[0]), Y: int16(r[1]),
			Width: uint16(r[2]), Height: uint16(r[3]), WidthInMillimeters: 250, HeightInMillimeters: 280,
		}).Check()
		testkit.Need(t, "RandR 1.5 monitors in Xvfb", err, "install Debian 12's xvfb or newer (make deps)")
	}
}

// shmSegments counts the System V segments this process created.
func shmSegments(t testing.TB) int {
	t.Helper()
	f, err := os.Open("/proc/sysvipc/shm")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header: key shmid perms size cpid lpid nattch …
	n, pid := 0, strconv.Itoa(os.Getpid())
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && fields[4] == pid {
			n++
		}
	}
	return n
}

// clientCount counts the X server's clients (other than the probe
// connection it opens) through the X-Resource extension.
func clientCount(t testing.TB, display string) int {
	t.Helper()
	conn, err := xconn.Dial(display, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// X-Resource has no events or errors: its Init only records the
	// opcode on this connection.
	testkit.Need(t, "the X-Resource extension in Xvfb", res.Init(conn.X), "install Debian's xvfb (make deps), which has it")
	reply, err := res.QueryClients(conn.X).Reply()
	if err != nil {
		t.Fatal(err)
	}
	return len(reply.Clients) - 1
}

func TestCloseFreesEverything(t *testing.T) {
	s := xvfb.Start(t)
	cl, err := testclient.Start(s.Display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })

	testkit.CheckGoroutines(t)
	segments := shmSegments(t)
	clients := clientCount(t, s.Display)

	c, err := Open(s.Display, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Capture(); err != nil {
		t.Fatal(err)
	}
	if err := c.Select(0); err != nil { // a new segment replaces the first
		t.Fatal(err)
	}
	if _, err := c.Capture(); err != nil {
		t.Fatal(err)
	}
	if got := shmSegments(t); got != segments+1 {
		t.Errorf("%d shm segments while capturing, want %d", got, segments+1)
	}
	if got := clientCount(t, s.Display); got != clients+1 {
		t.Errorf("%d X clients while capturing, want %d", got, clients+1)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for name, call := range map[string]func() error{
		"Capture":  func() error { _, err := c.Capture(); return err },
		"Monitors": func() error { _, err := c.Monitors(); return err },
		"Select":   func() error { return c.Select(WholeScreen) },
	} {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if got := shmSegments(t); got != segments {
		t.Errorf("%d shm segments after Close, want %d", got, segments)
	}
	checkFor(t, waitTimeout, 5*time.Millisecond, func() error {
		if got := clientCount(t, s.Display); got != clients {
			return fmt.Errorf("%d X clients after Close, want %d", got, clients)
		}
		return nil
	})
}

func TestDisplayLost(t *testing.T) {
	s := xvfb.Start(t)
	c, err := Open(s.Display, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	settle(t, c)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	xc := c.(*x11Capturer)
	xc.mu.Lock()
	xc.lastContact = time.Time{} // make the next idle Capture check
	xc.mu.Unlock()
	checkFor(t, waitTimeout, 5*time.Millisecond, func() error {
		_, err := c.Capture()
		if errors.Is(err, ErrDisplayClosed) {
			return nil
		}
		return fmt.Errorf("Capture after the server stopped = %v, want ErrDisplayClosed", err)
	})
}

func TestOpenErrors(t *testing.T) {
	s := xvfb.Start(t)
	tests := []struct {
		name    string
		display string
		env     map[string]string
		wantErr error
	}{
		{name: "Wayland only", env: map[string]string{"DISPLAY": "", "WAYLAND_DISPLAY": "wayland-0"}, wantErr: ErrWaylandNotSupported},
		{name: "Wayland session type", env: map[string]string{"DISPLAY": s.Display, "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, wantErr: ErrWaylandNotSupported},
		{name: "Wayland, X unreachable", env: map[string]string{"DISPLAY": ":64999", "WAYLAND_DISPLAY": "wayland-0"}, wantErr: ErrWaylandNotSupported},
		{name: "no display", env: map[string]string{"DISPLAY": "", "WAYLAND_DISPLAY": ""}, wantErr: ErrNoDisplay},
		{name: "unreachable display", display: ":64999", wantErr: ErrNoDisplay},
		{name: "DISPLAY from the environment", env: map[string]string{"DISPLAY": s.Display, "WAYLAND_DISPLAY": "", "XDG_SESSION_TYPE": "x11"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("XDG_SESSION_TYPE", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := Open(tt.display, nil)
			if err == nil {
				defer c.Close()
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Open(%q) error = %v, want %v", tt.display, err, tt.wantErr)
			}
		})
	}
}

// BenchmarkCapture1080p measures a full 1920x1080 grab through MIT-SHM
// after the whole screen changed (the change itself is not timed).
func BenchmarkCapture1080p(b *testing.B) {
	_, cl, c := setup(b)
	if info := c.Info(); info.Grab != GrabSHM || info.Change != ChangeDamage {
		b.Fatalf("Info() = %+v, want MIT-SHM and DAMAGE", info)
	}
	settle(b, c)
	b.SetBytes(1920 * 1080 * 4)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if err := cl.SetColor(byte(i), byte(i>>8), 0x80); err != nil {
			b.Fatal(err)
		}
		waitFullDamage(b, c)
		b.StartTimer()
		f, err := c.Capture()
		if err != nil {
			b.Fatal(err)
		}
		if !f.Changed {
			b.Fatal("no change captured")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/frame")
}

// waitFullDamage waits until the capturer has received damage covering
// the whole captured area.
func waitFullDamage(b *testing.B, c *x11Capturer) {
	deadline := time.Now().Add(waitTimeout)
	for {
		c.mu.Lock()
		c.pollEvents()
		full := c.damaged.Intersect(c.rect) == c.rect
		c.mu.Unlock()
		if full {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("damage for the whole screen did not arrive")
		}
		runtime.Gosched()
	}
}

// BenchmarkCaptureIdle measures Capture on a screen that does not change.
func BenchmarkCaptureIdle(b *testing.B) {
	_, _, c := setup(b)
	settle(b, c)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f, err := c.Capture()
		if err != nil {
			b.Fatal(err)
		}
		if f.Changed {
			b.Fatal("idle screen reported a change")
		}
	}
}

// TestXAuthority checks that Open authenticates with the cookie in
// $XAUTHORITY (the test servers require one).
func TestXAuthority(t *testing.T) {
	s := xvfb.Start(t)
	file := xvfb.XAuthority()
	if file == "" || os.Getenv("XAUTHORITY") != file {
		t.Fatalf("XAUTHORITY = %q, want the servers' file %q", os.Getenv("XAUTHORITY"), file)
	}
	t.Run("without the cookie", func(t *testing.T) {
		t.Setenv("XAUTHORITY", filepath.Join(t.TempDir(), "none"))
		if c, err := Open(s.Display, nil); !errors.Is(err, ErrNoDisplay) {
			if err == nil {
				c.Close()
			}
			t.Fatalf("Open without the cookie = %v, want ErrNoDisplay", err)
		}
	})
	t.Run("with the cookie", func(t *testing.T) {
		c, err := Open(s.Display, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
}

// TestChanges checks that a DAMAGE capturer signals drawing as it happens
// (so the stream needs no polling tick) and the loss of its display, and
// that a capturer without DAMAGE has no channel.
func TestChanges(t *testing.T) {
	s, cl, c := setup(t)
	ch := c.Changes()
	if ch == nil {
		t.Fatal("Changes() is nil with DAMAGE")
	}
	wait := func(what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(waitTimeout):
			t.Fatalf("no change signalled after %s", what)
		}
	}
	settle(t, c)
	for len(ch) > 0 {
		<-ch
	}
	if err := cl.SetColor(200, 10, 10); err != nil {
		t.Fatal(err)
	}
	wait("a colour change")
	// The signal means the damage is recorded: one Capture sees it.
	checkFor(t, waitTimeout, time.Millisecond, func() error {
		f, err := c.Capture()
		if err != nil {
			t.Fatal(err)
		}
		if !f.Changed {
			return errors.New("signalled, but Capture saw no change")
		}
		return nil
	})

	// The server goes away: the watcher signals and Capture says so,
	// without waiting for an idle liveness check.
	settle(t, c)
	for len(ch) > 0 {
		<-ch
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(waitTimeout)
	for {
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("the watcher did not signal the lost display")
		}
		c.mu.Lock()
		c.lastContact = time.Now() // no liveness round trip: only the watcher can tell
		c.mu.Unlock()
		_, err := c.Capture()
		if errors.Is(err, ErrDisplayClosed) {
			break
		}
		if err != nil {
			t.Fatalf("Capture after the server stopped = %v, want ErrDisplayClosed", err)
		}
	}

	_, _, nc := setup(t, "-extension", "DAMAGE")
	if nc.Changes() != nil {
		t.Error("Changes() is not nil without DAMAGE: callers would wait forever")
	}
}
