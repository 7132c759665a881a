package tray

import (
	"bufio"
	"bytes"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deskside/deskside/internal/testkit"
)

// TestCaptureScreen takes the page's screenshot of a real X server (its
// own Xvfb) with the agent's capture code: a PNG of the screen's size.
func TestCaptureScreen(t *testing.T) {
	testkit.Heavy(t, "starts Xvfb")
	_, err := exec.LookPath("Xvfb")
	testkit.Need(t, "Xvfb", err, "install the Debian package xvfb (make deps)")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "320x200x24", "-nolisten", "tcp", "-br")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case n := <-line:
		if n == "" {
			t.Fatal("Xvfb did not say its display")
		}
		t.Setenv("DISPLAY", ":"+n)
	case <-time.After(30 * time.Second):
		t.Fatal("Xvfb did not start within 30 s")
	}
	b, err := CaptureScreen()
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != 320 || img.Bounds().Dy() != 200 {
		t.Fatalf("screenshot %v, want 320×200", img.Bounds())
	}
	if c := color.NRGBAModel.Convert(img.At(10, 10)).(color.NRGBA); c != (color.NRGBA{0, 0, 0, 0xff}) {
		t.Fatalf("a black root window (-br) captured as %v", c)
	}

	t.Setenv("DISPLAY", ":1999")
	if _, err := CaptureScreen(); err == nil || !strings.Contains(err.Error(), "cannot take a screenshot") {
		t.Fatalf("no X server: %v", err)
	}
}

// TestEncodeBGRX: X11's B, G, R, X bytes become an opaque PNG of the
// right colours, with the stride's padding skipped.
func TestEncodeBGRX(t *testing.T) {
	pix := []byte{
		0x10, 0x20, 0x30, 0x99, 0xff, 0x00, 0x00, 0x00, 0xee, 0xee, // row 0 + 2 bytes padding
		0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0x77, 0xee, 0xee,
	}
	b, err := encodeBGRX(pix, 2, 2, 10)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		x, y int
		want color.NRGBA
	}{
		{0, 0, color.NRGBA{0x30, 0x20, 0x10, 0xff}},
		{1, 0, color.NRGBA{0, 0, 0xff, 0xff}},
		{0, 1, color.NRGBA{0, 0xff, 0, 0xff}},
		{1, 1, color.NRGBA{0xff, 0, 0, 0xff}},
	} {
		if got := color.NRGBAModel.Convert(img.At(c.x, c.y)).(color.NRGBA); got != c.want {
			t.Errorf("(%d,%d) = %v, want %v", c.x, c.y, got, c.want)
		}
	}
}
