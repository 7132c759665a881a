package testclient

import (
	"image/color"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop/internal/xconn"
	"github.com/deskside/deskside/agent/desktop/internal/xvfb"
	"github.com/deskside/deskside/internal/testkit"
)

const waitTimeout = 10 * time.Second

// pixelAt reads one pixel of the root window as B, G, R.
func pixelAt(t *testing.T, c *xconn.Conn, x, y int) [3]byte {
	t.Helper()
	img, err := xproto.GetImage(c.X, xproto.ImageFormatZPixmap, xproto.Drawable(c.Root), int16(x), int16(y), 1, 1, 0xffffffff).Reply()
	if err != nil {
		t.Fatalf("GetImage(%d,%d): %v", x, y, err)
	}
	return [3]byte{img.Data[0], img.Data[1], img.Data[2]}
}

func bgr(c color.RGBA) [3]byte { return [3]byte{c.B, c.G, c.R} }

func TestPicture(t *testing.T) {
	s := xvfb.Start(t)
	c, err := Start(s.Display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if w, h := c.Size(); w != 1920 || h != 1080 {
		t.Fatalf("Size() = %dx%d, want 1920x1080", w, h)
	}
	probe, err := xconn.Dial(s.Display, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(probe.Close)

	for _, tt := range []struct {
		name string
		x, y int
		want color.RGBA
	}{
		{"top left", 10, 10, DefaultQuadrants[0]},
		{"top right", 1900, 10, DefaultQuadrants[1]},
		{"bottom left", 10, 1070, DefaultQuadrants[2]},
		{"bottom right", 1900, 1070, DefaultQuadrants[3]},
		{"centre is bottom right", 960, 540, DefaultQuadrants[3]},
		{"just left of centre", 959, 539, DefaultQuadrants[0]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := pixelAt(t, probe, tt.x, tt.y); got != bgr(tt.want) {
				t.Errorf("pixel (%d,%d) = BGR %v, want %v", tt.x, tt.y, got, bgr(tt.want))
			}
		})
	}

	if err := c.SetColor(1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if got := pixelAt(t, probe, 1000, 700); got != [3]byte{3, 2, 1} {
		t.Errorf("after SetColor(1,2,3) pixel = BGR %v", got)
	}
	if err := c.FillRect(100, 100, 10, 10, color.RGBA{R: 9, G: 8, B: 7}); err != nil {
		t.Fatal(err)
	}
	if got := pixelAt(t, probe, 105, 105); got != [3]byte{7, 8, 9} {
		t.Errorf("after FillRect pixel = BGR %v", got)
	}
	if got := pixelAt(t, probe, 111, 111); got != [3]byte{3, 2, 1} {
		t.Errorf("outside FillRect pixel = BGR %v", got)
	}
}

// TestInputWithXdotool checks the recording against an independent
// injector.
func TestInputWithXdotool(t *testing.T) {
	testkit.Heavy(t, "starts Xvfb")
	xdotool, err := exec.LookPath("xdotool")
	testkit.Need(t, "xdotool", err, "install the Debian package xdotool (make deps)")
	s := xvfb.Start(t)
	c, err := Start(s.Display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(xdotool, args...)
		cmd.Env = append(os.Environ(), "DISPLAY="+s.Display)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("xdotool %v: %v\n%s", args, err, out)
		}
	}
	run("mousemove", "123", "456", "click", "3")
	if err := c.WaitFor(func(evs []Event) bool {
		return HasButton(evs, ButtonPress, 3, 123, 456) && HasButton(evs, ButtonRelease, 3, 123, 456)
	}, waitTimeout); err != nil {
		t.Fatal(err)
	}
	c.ResetEvents()
	run("type", "--delay", "0", "Hi, you!")
	if err := c.WaitFor(func(evs []Event) bool { return Text(evs) == "Hi, you!" }, waitTimeout); err != nil {
		t.Fatal(err)
	}
}
