//go:build linux && cgo && !novpx

package encode

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/desktop/internal/vpxdec"
)

// frameStep is the pts step of the tests: 30 fps.
const frameStep = time.Second / 30

type rgb struct{ r, g, b uint8 }

// bars are the SMPTE-like colour bars of testPattern, left to right.
var bars = []rgb{
	{255, 255, 255}, {255, 255, 0}, {0, 255, 255}, {0, 255, 0},
	{255, 0, 255}, {255, 0, 0}, {0, 0, 255}, {0, 0, 0},
}

// image is a BGRA frame.
type image struct {
	w, h, stride int
	pix          []byte
}

func newImage(w, h int) *image {
	stride := w*4 + 64 // not tight, as capture buffers often are not
	return &image{w: w, h: h, stride: stride, pix: make([]byte, stride*h)}
}

func (m *image) set(x, y int, c rgb) {
	i := y*m.stride + 4*x
	m.pix[i], m.pix[i+1], m.pix[i+2], m.pix[i+3] = c.b, c.g, c.r, 255
}

func (m *image) fill(x0, y0, x1, y1 int, c rgb) {
	x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, m.w), min(y1, m.h)
	if x0 >= x1 || y0 >= y1 {
		return
	}
	for x := x0; x < x1; x++ {
		m.set(x, y0, c)
	}
	row := m.pix[y0*m.stride+4*x0 : y0*m.stride+4*x1]
	for y := y0 + 1; y < y1; y++ {
		copy(m.pix[y*m.stride+4*x0:], row)
	}
}

// testPattern draws colour bars with a grey box moving across them.
func testPattern(m *image, frame int) {
	bw := m.w / len(bars)
	for i, c := range bars {
		x1 := (i + 1) * bw
		if i == len(bars)-1 {
			x1 = m.w
		}
		m.fill(i*bw, 0, x1, m.h, c)
	}
	box := m.h / 5
	x, y := (frame*24)%(m.w-box), (frame*12)%(m.h-box)
	m.fill(x, y, x+box, y+box, rgb{128, 128, 128})
}

// textCanvas is a document-like page (dark "words" on white lines) taller
// than the screen; scrolling it stresses the encoder the way a user reading
// a log or a web page does.
type textCanvas struct {
	image
	screenH int
}

func newTextCanvas(w, screenH, extra int) *textCanvas {
	c := &textCanvas{image: *newImage(w, screenH+extra), screenH: screenH}
	c.fill(0, 0, c.w, c.h, rgb{255, 255, 255})
	rng := rand.New(rand.NewPCG(1, 2))
	ink := []rgb{{20, 20, 20}, {20, 20, 20}, {20, 20, 20}, {30, 60, 200}, {180, 30, 30}}
	for line := 4; line+14 < c.h; line += 20 {
		x := 40 + rng.IntN(3)*32 // indentation
		end := c.w - 40 - rng.IntN(c.w/2)
		for x < end {
			col := ink[rng.IntN(len(ink))]
			word := 2 + rng.IntN(9)
			for range word { // glyphs: a few strokes in an 8x12 cell
				for s := 0; s < 3; s++ {
					gx, gy := x+rng.IntN(7), line+rng.IntN(10)
					if rng.IntN(2) == 0 {
						c.fill(gx, gy, gx+1, gy+2+rng.IntN(8), col)
					} else {
						c.fill(gx, gy, gx+2+rng.IntN(5), gy+1, col)
					}
				}
				x += 9
			}
			x += 9
		}
	}
	return c
}

// screen returns the visible window scrolled down by dy rows (no copy).
func (c *textCanvas) screen(dy int) []byte {
	dy %= c.h - c.screenH + 1
	return c.pix[dy*c.stride : (dy+c.screenH-1)*c.stride+c.w*4]
}

func newTestEncoder(t testing.TB, cfg Config) *vp8Encoder {
	t.Helper()
	enc, err := newVP8(cfg, defaultTuning)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	return enc
}

func newTestDecoder(t testing.TB) *vpxdec.Decoder {
	t.Helper()
	dec, err := vpxdec.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dec.Close() })
	return dec
}

func near(got, want rgb, tol int) bool {
	d := func(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }
	return d(got.r, want.r) <= tol && d(got.g, want.g) <= tol && d(got.b, want.b) <= tol
}

func TestAvailable(t *testing.T) {
	if !Available {
		t.Fatal("Available is false in the libvpx build")
	}
	enc, err := NewVP8(Config{Width: 64, Height: 64})
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewVP8BadConfig(t *testing.T) {
	if _, err := NewVP8(Config{Width: 0, Height: 1080}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("err = %v, want ErrBadConfig", err)
	}
}

// TestEncode1080p encodes 60 frames of colour bars with a moving box: the
// first frame is a key frame that decodes to the bars, later frames are
// delta frames until ForceKeyframe, and every frame decodes at full size.
func TestEncode1080p(t *testing.T) {
	const w, h, n, forceAt = 1920, 1080, 60, 30
	enc := newTestEncoder(t, Config{Width: w, Height: h})
	dec := newTestDecoder(t)
	img := newImage(w, h)
	var (
		produced, keys int
		wantKey        bool
		total          int
	)
	for i := range n {
		testPattern(img, i)
		if i == forceAt {
			enc.ForceKeyframe()
			wantKey = true
		}
		frame, key, err := enc.Encode(img.pix, img.stride, time.Duration(i)*frameStep)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if frame == nil {
			if i == 0 {
				t.Fatal("the first frame was dropped")
			}
			continue
		}
		produced++
		total += len(frame)
		if len(frame) == 0 {
			t.Fatalf("frame %d: empty, not nil", i)
		}
		switch {
		case i == 0 && !key:
			t.Fatal("the first frame is not a key frame")
		case wantKey && !key:
			t.Fatalf("frame %d after ForceKeyframe is not a key frame", i)
		case i != 0 && !wantKey && key:
			t.Errorf("frame %d is an unrequested key frame", i)
		}
		if key {
			keys++
		}
		wantKey = false

		pic, err := dec.Decode(frame)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if pic == nil || pic.Width != w || pic.Height != h {
			t.Fatalf("frame %d decoded to %+v, want %dx%d", i, pic, w, h)
		}
		if i == 0 { // each bar's colour survives, at its place (B and R not swapped)
			bw := w / len(bars)
			for b, want := range bars {
				var got rgb
				got.r, got.g, got.b = pic.RGB(b*bw+bw/2, h-40)
				if !near(got, want, 24) {
					t.Errorf("bar %d: decoded %v, want %v", b, got, want)
				}
			}
		}
	}
	if keys != 2 {
		t.Errorf("%d key frames, want 2", keys)
	}
	if produced < n*3/4 {
		t.Errorf("only %d of %d frames produced", produced, n)
	}
	t.Logf("%d frames, %d dropped, %d bytes on average", produced, n-produced, total/max(produced, 1))
}

// TestDecodedColour encodes solid colours, at even and odd sizes, and checks
// the decoded picture's size and centre colour.
func TestDecodedColour(t *testing.T) {
	colours := map[string]rgb{
		"red": {255, 0, 0}, "green": {0, 255, 0}, "blue": {0, 0, 255}, "white": {255, 255, 255},
		"black": {0, 0, 0}, "grey": {128, 128, 128}, "orange": {255, 128, 0},
	}
	for _, size := range [][2]int{{64, 48}, {33, 17}, {1, 1}} {
		for name, c := range colours {
			t.Run(fmt.Sprintf("%dx%d/%s", size[0], size[1], name), func(t *testing.T) {
				w, h := size[0], size[1]
				enc := newTestEncoder(t, Config{Width: w, Height: h})
				dec := newTestDecoder(t)
				img := newImage(w, h)
				img.fill(0, 0, w, h, c)
				// The tightest buffer the API allows: no padding after the last row.
				pix := img.pix[:img.stride*(h-1)+w*4]
				for i := range 3 {
					frame, _, err := enc.Encode(pix, img.stride, time.Duration(i)*frameStep)
					if err != nil {
						t.Fatal(err)
					}
					if frame == nil {
						continue
					}
					pic, err := dec.Decode(frame)
					if err != nil {
						t.Fatal(err)
					}
					if pic.Width != w || pic.Height != h {
						t.Fatalf("decoded %dx%d, want %dx%d", pic.Width, pic.Height, w, h)
					}
					for _, p := range [][2]int{{w / 2, h / 2}, {w - 1, h - 1}} {
						var got rgb
						got.r, got.g, got.b = pic.RGB(p[0], p[1])
						if !near(got, c, 12) {
							t.Errorf("frame %d at %v: decoded %v, want %v", i, p, got, c)
						}
					}
				}
			})
		}
	}
}

// TestSetBitrate checks that the encoder follows SetBitrate on a changing
// (scrolling text) picture, and clamps it.
func TestSetBitrate(t *testing.T) {
	const w, h, n = 1280, 720, 60
	enc := newTestEncoder(t, Config{Width: w, Height: h, BitrateKbps: 4000, MinBitrateKbps: 200, MaxBitrateKbps: 5000, Threads: 1})
	canvas := newTextCanvas(w, h, 2*n*8)
	avg := func(phase int) int {
		total, count := 0, 0
		for i := range n {
			f := phase*n + i
			frame, _, err := enc.Encode(canvas.screen(f*8), canvas.stride, time.Duration(f)*frameStep)
			if err != nil {
				t.Fatal(err)
			}
			if i >= 15 { // let rate control settle after the change
				total += len(frame)
				count++
			}
		}
		return total / count
	}
	high := avg(0)
	if err := enc.SetBitrate(400); err != nil {
		t.Fatal(err)
	}
	low := avg(1)
	t.Logf("4000 kbps: %d bytes/frame (target %d); 400 kbps: %d bytes/frame (target %d)",
		high, 4000*1000/8/30, low, 400*1000/8/30)
	if low*2 > high {
		t.Errorf("at 400 kbps frames average %d bytes, at 4000 kbps %d: want less than half", low, high)
	}
	for _, tt := range []struct{ set, want int }{{1, 200}, {-5, 200}, {1 << 30, 5000}, {1234, 1234}} {
		if err := enc.SetBitrate(tt.set); err != nil {
			t.Fatal(err)
		}
		if got := enc.Bitrate(); got != tt.want {
			t.Errorf("SetBitrate(%d): bitrate %d, want %d", tt.set, got, tt.want)
		}
	}
}

func TestEncodeBadFrame(t *testing.T) {
	const w, h = 64, 48
	enc := newTestEncoder(t, Config{Width: w, Height: h})
	tests := []struct {
		name   string
		pix    []byte
		stride int
	}{
		{"nil", nil, w * 4},
		{"stride below width", make([]byte, w*4*h), w*4 - 4},
		{"zero stride", make([]byte, w*4*h), 0},
		{"negative stride", make([]byte, w*4*h), -w * 4},
		{"short buffer", make([]byte, w*4*h-1), w * 4},
		{"short for stride", make([]byte, w*4*h), w*4 + 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame, key, err := enc.Encode(tt.pix, tt.stride, 0)
			if !errors.Is(err, ErrBadFrame) || frame != nil || key {
				t.Fatalf("Encode = %d bytes, %v, %v; want ErrBadFrame", len(frame), key, err)
			}
		})
	}
	// The encoder still works afterwards.
	if frame, key, err := enc.Encode(make([]byte, w*4*h), w*4, 0); err != nil || !key || len(frame) == 0 {
		t.Fatalf("Encode after bad frames = %d bytes, %v, %v", len(frame), key, err)
	}
}

// TestKeyframeInterval checks kf_max_dist: 1 s at 10 fps is a key frame at
// least every 10 frames.
func TestKeyframeInterval(t *testing.T) {
	const w, h = 160, 120
	enc := newTestEncoder(t, Config{Width: w, Height: h, FPS: 10, KeyframeInterval: time.Second})
	img := newImage(w, h)
	last, keys := 0, 0
	for i := range 35 {
		testPattern(img, i)
		frame, key, err := enc.Encode(img.pix, img.stride, time.Duration(i)*100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if frame == nil || !key {
			continue
		}
		if i-last > 10 {
			t.Errorf("key frames at %d and %d: more than 10 frames apart", last, i)
		}
		last = i
		keys++
	}
	if keys < 4 {
		t.Errorf("%d key frames in 35 frames at a 10-frame interval, want 4", keys)
	}
}

// TestPTSNotIncreasing checks that repeated or backward timestamps are
// accepted (moved forward) rather than upsetting libvpx.
func TestPTSNotIncreasing(t *testing.T) {
	const w, h = 64, 48
	enc := newTestEncoder(t, Config{Width: w, Height: h})
	img := newImage(w, h)
	for i, pts := range []time.Duration{time.Second, time.Second, 0, -time.Second, time.Hour, time.Hour + time.Millisecond} {
		testPattern(img, i)
		if _, _, err := enc.Encode(img.pix, img.stride, pts); err != nil {
			t.Fatalf("frame %d at %v: %v", i, pts, err)
		}
	}
}

func TestClose(t *testing.T) {
	const w, h = 64, 48
	enc, err := NewVP8(Config{Width: w, Height: h})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := enc.Encode(make([]byte, w*h*4), w*4, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Encode after Close: %v, want ErrClosed", err)
	}
	if err := enc.SetBitrate(1000); !errors.Is(err, ErrClosed) {
		t.Errorf("SetBitrate after Close: %v, want ErrClosed", err)
	}
	enc.ForceKeyframe() // harmless
}

// TestConcurrentControl calls ForceKeyframe, SetBitrate and Close from other
// goroutines while frames are encoded (meaningful under -race).
func TestConcurrentControl(t *testing.T) {
	const w, h = 320, 240
	enc := newTestEncoder(t, Config{Width: w, Height: h})
	img := newImage(w, h)
	testPattern(img, 0)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			enc.ForceKeyframe()
			if err := enc.SetBitrate(300 + i%2000); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for i := range 30 {
		if _, _, err := enc.Encode(img.pix, img.stride, time.Duration(i)*frameStep); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	wg.Go(func() { enc.Close() })
	enc.Close()
	wg.Wait()
}
