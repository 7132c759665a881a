//go:build linux && cgo && !novpx

package encode

import (
	"fmt"
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/desktop/internal/vpxdec"
)

// scrollStep is how far the benchmark's text scrolls per frame (240 px/s
// at 30 fps: smooth scrolling through a document).
const scrollStep = 8

// cpuTime is the process's user+system time (all threads: the encoder's
// worker threads included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type encodeStats struct {
	frames, dropped, bytes int
	wall, cpu              time.Duration
	psnr                   float64 // luma, of the produced frames; 0 if not measured
}

func (s encodeStats) report(b *testing.B) {
	n := float64(s.frames)
	b.ReportMetric(float64(s.wall.Microseconds())/1000/n, "ms/frame")
	b.ReportMetric(float64(s.cpu.Microseconds())/1000/n, "cpu-ms/frame")
	b.ReportMetric(float64(s.bytes)/n, "B/frame")
	b.ReportMetric(float64(s.dropped)/n*100, "%dropped")
	if s.psnr != 0 {
		b.ReportMetric(s.psnr, "dB-PSNR-Y")
	}
	b.ReportMetric(0, "ns/op") // ms/frame says it better
}

// benchScroll encodes the scrolling text page at 1080p, 1500 kbps, 8 rows
// a frame. The first (key) frame is encoded before the timer starts. With
// measure, the same stream is encoded again untimed and decoded for its
// luma PSNR.
func benchScroll(b *testing.B, t tuning, threads int, measure bool) encodeStats {
	return benchScrollAt(b, t, threads, 1500, scrollStep, measure)
}

// benchScrollAt is benchScroll at kbps, scrolling step rows a frame.
func benchScrollAt(b *testing.B, t tuning, threads, kbps, step int, measure bool) encodeStats {
	const w, h = 1920, 1080
	enc, err := newVP8(Config{Width: w, Height: h, BitrateKbps: kbps, Threads: threads}, t)
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	canvas := newTextCanvas(w, h, 600*step)
	if _, _, err := enc.Encode(canvas.screen(0), canvas.stride, 0); err != nil {
		b.Fatal(err)
	}
	var st encodeStats
	cpu0 := cpuTime()
	for i := 1; b.Loop(); i++ {
		frame, _, err := enc.Encode(canvas.screen(i*step), canvas.stride, time.Duration(i)*frameStep)
		if err != nil {
			b.Fatal(err)
		}
		st.frames++
		st.bytes += len(frame)
		if frame == nil {
			st.dropped++
		}
	}
	st.wall, st.cpu = b.Elapsed(), cpuTime()-cpu0
	if measure {
		b.StopTimer()
		st.psnr = streamPSNR(b, t, threads, kbps, step, w, h, canvas, st.frames)
	}
	return st
}

// streamPSNR encodes n+1 scrolling frames with a fresh encoder and returns
// the mean luma PSNR of the decoded frames against the source.
func streamPSNR(b *testing.B, t tuning, threads, kbps, step, w, h int, canvas *textCanvas, n int) float64 {
	enc, err := newVP8(Config{Width: w, Height: h, BitrateKbps: kbps, Threads: threads}, t)
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	dec := newTestDecoder(b)
	var sum float64
	count := 0
	for i := 0; i <= n; i++ {
		src := canvas.screen(i * step)
		frame, _, err := enc.Encode(src, canvas.stride, time.Duration(i)*frameStep)
		if err != nil {
			b.Fatal(err)
		}
		if frame == nil {
			continue
		}
		pic, err := dec.Decode(frame)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			continue // the key frame is not what a scrolling viewer sees
		}
		var se float64
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				p := src[y*canvas.stride+4*x:]
				want := ((66*int(p[2]) + 129*int(p[1]) + 25*int(p[0]) + 128) >> 8) + 16
				d := float64(want - int(pic.Y[y*pic.YStride+x]))
				se += d * d
			}
		}
		mse := se / float64(w*h)
		sum += 10 * math.Log10(255*255/math.Max(mse, 1e-10))
		count++
	}
	return sum / float64(max(count, 1))
}

// BenchmarkEncode1080p encodes full-screen scrolling text at 1500 kbps with
// the default settings. ms/frame is wall time per frame (the budget is
// 10 ms: a third of a 30 fps frame interval); cpu-ms/frame is the CPU time
// of all threads.
func BenchmarkEncode1080p(b *testing.B) {
	benchScroll(b, defaultTuning, 0, false).report(b)
}

// BenchmarkEncode1080pStatic re-encodes an unchanged screen once it has
// settled: after a key frame libvpx spends a few seconds refining the
// picture (cyclic refresh of a tenth of the macroblocks per frame), then
// sends near-empty frames. settle-frames is how many frames that took.
func BenchmarkEncode1080pStatic(b *testing.B) {
	const w, h = 1920, 1080
	enc := newTestEncoder(b, Config{Width: w, Height: h, BitrateKbps: 1500})
	canvas := newTextCanvas(w, h, 0) // text on the top half
	testPattern(&canvas.image, 3)    // colour bars and a box below
	copy(canvas.pix, newTextCanvas(w, h/2, 0).pix)
	src := canvas.screen(0)
	settle, small := 0, 0
	for ; settle < 600 && small < 10; settle++ {
		frame, _, err := enc.Encode(src, canvas.stride, time.Duration(settle)*frameStep)
		if err != nil {
			b.Fatal(err)
		}
		if len(frame) < 1000 {
			small++
		} else {
			small = 0
		}
	}
	var st encodeStats
	cpu0 := cpuTime()
	for i := settle; b.Loop(); i++ {
		frame, _, err := enc.Encode(src, canvas.stride, time.Duration(i)*frameStep)
		if err != nil {
			b.Fatal(err)
		}
		st.frames++
		st.bytes += len(frame)
		if frame == nil {
			st.dropped++
		}
	}
	st.wall, st.cpu = b.Elapsed(), cpuTime()-cpu0
	st.report(b)
	b.ReportMetric(float64(settle), "settle-frames")
}

// BenchmarkBGRAToI420 measures the colour conversion alone (part of every
// Encode).
func BenchmarkBGRAToI420(b *testing.B) {
	const w, h = 1920, 1080
	enc := newTestEncoder(b, Config{Width: w, Height: h})
	canvas := newTextCanvas(w, h, 0)
	b.SetBytes(int64(w * h * 4))
	for b.Loop() {
		enc.convert(canvas.pix, canvas.stride)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/frame")
}

// BenchmarkEncode1080pTuning compares libvpx speeds (cpu-used) and thread
// counts on the scrolling page: time per frame against bytes and luma PSNR
// at the same bitrate. It backs the choice of defaultTuning. The profile 1
// runs show the cost of profile 0's normal loop filter and six-tap
// interpolation.
func BenchmarkEncode1080pTuning(b *testing.B) {
	type run struct{ cpu, threads, profile int }
	var runs []run
	for _, cpu := range []int{-6, -8, -10, -12, -16} {
		for _, threads := range []int{1, 2} {
			runs = append(runs, run{cpu, threads, 0})
		}
	}
	runs = append(runs, run{-10, 1, 1}, run{-10, 2, 1})
	for _, r := range runs {
		b.Run(fmt.Sprintf("cpu%d/threads%d/profile%d", r.cpu, r.threads, r.profile), func(b *testing.B) {
			t := defaultTuning
			t.cpuUsed, t.profile = r.cpu, r.profile
			benchScroll(b, t, r.threads, true).report(b)
		})
	}
}

// glyphPage is the desktop benchmark's document (agent/desktop's
// textPage): glyphs of 2-4 strokes in 9×18 cells, lines of words with a
// ragged right edge and the odd blank line, dark ink on white, drawn h
// rows tall.
func glyphPage(w, h int) *textCanvas {
	const cellW, cellH, marginX = 9, 18, 48
	type stroke struct{ x, y, w, h int }
	r := rand.New(rand.NewPCG(1, 2))
	var glyphs [][]stroke
	for range 64 {
		var g []stroke
		for range 2 + r.IntN(3) {
			switch r.IntN(3) {
			case 0: // stem
				hh := 6 + r.IntN(6)
				g = append(g, stroke{1 + r.IntN(6), 14 - hh, 1 + r.IntN(2), hh})
			case 1: // bar
				g = append(g, stroke{1 + r.IntN(3), 4 + r.IntN(10), 4 + r.IntN(4), 1 + r.IntN(2)})
			default: // bowl or dot
				s := 2 + r.IntN(4)
				g = append(g, stroke{1 + r.IntN(7-s+1), 14 - s - r.IntN(4), s, s})
			}
		}
		glyphs = append(glyphs, g)
	}
	c := &textCanvas{image: *newImage(w, h), screenH: 1080}
	c.fill(0, 0, w, h, rgb{255, 255, 255})
	perLine := (w - 2*marginX) / cellW
	for k := 0; (k+1)*cellH <= h; k++ {
		lr := rand.New(rand.NewPCG(uint64(k), 7))
		if lr.IntN(8) == 0 {
			continue // paragraph break
		}
		n := min(perLine, 30+lr.IntN(perLine-30))
		i := 4 * lr.IntN(4) // indent
		for i < n {
			for range 2 + lr.IntN(8) {
				if i < n {
					for _, s := range glyphs[lr.IntN(len(glyphs))] {
						x, y := marginX+i*cellW+s.x, k*cellH+s.y
						c.fill(x, y, x+s.w, y+s.h, rgb{0x20, 0x20, 0x20})
					}
				}
				i++
			}
			i++
		}
	}
	return c
}

// BenchmarkEncode1080pBitrate scrolls the desktop benchmark's page at
// several target bitrates, 3 rows a frame at 30 fps (the benchmark's
// scene) and 9 rows a frame at 10 fps (the same scrolling when capture
// falls behind), and reports over 5 s, as that benchmark does, the bitrate
// reached, the luma PSNR and the mean quantizer. It backs
// DefaultBitrateKbps. The figures describe the scene, not an iteration:
// they are the same for any -benchtime.
func BenchmarkEncode1080pBitrate(b *testing.B) {
	const w, h = 1920, 1080
	for _, sc := range []struct{ step, fps int }{{3, 30}, {9, 10}} {
		for _, kbps := range []int{1000, 1200, 1500} {
			b.Run(fmt.Sprintf("step%d/fps%d/%dkbps", sc.step, sc.fps, kbps), func(b *testing.B) {
				page := glyphPage(w, h+8*sc.fps*sc.step)
				enc, err := newVP8(Config{Width: w, Height: h, BitrateKbps: kbps}, defaultTuning)
				if err != nil {
					b.Fatal(err)
				}
				defer enc.Close()
				dec := newTestDecoder(b)
				interval := time.Second / time.Duration(sc.fps)
				var bytes, frames, dropped, qsum, qn, pn int
				var psnr float64
				// The page is shown for a second, then scrolls; the first
				// second of scrolling is not counted.
				for i := range 7 * sc.fps {
					src := page.screen(max(0, i-sc.fps) * sc.step)
					frame, _, err := enc.Encode(src, page.stride, time.Duration(i)*interval)
					if err != nil {
						b.Fatal(err)
					}
					var pic *vpxdec.Frame
					if frame != nil {
						if pic, err = dec.Decode(frame); err != nil {
							b.Fatal(err)
						}
					}
					if i < 2*sc.fps {
						continue
					}
					frames++
					bytes += len(frame)
					if frame == nil {
						dropped++
						continue
					}
					qsum += enc.lastQuantizer()
					qn++
					if qn%3 == 1 && pic != nil {
						psnr += lumaPSNR(src, page.stride, pic.Y, pic.YStride, w, h)
						pn++
					}
				}
				for b.Loop() {
				}
				b.ReportMetric(float64(bytes)*8/float64(frames)*float64(sc.fps)/1000, "kbit/s")
				b.ReportMetric(float64(dropped)/float64(frames)*100, "%dropped")
				b.ReportMetric(float64(qsum)/float64(max(qn, 1)), "q")
				b.ReportMetric(psnr/float64(max(pn, 1)), "dB-PSNR-Y")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// lumaPSNR compares a decoded luma plane with the BGRA source.
func lumaPSNR(src []byte, stride int, y []byte, ystride, w, h int) float64 {
	var se float64
	for r := 0; r < h; r++ {
		for x := 0; x < w; x++ {
			p := src[r*stride+4*x:]
			want := ((66*int(p[2]) + 129*int(p[1]) + 25*int(p[0]) + 128) >> 8) + 16
			d := float64(want - int(y[r*ystride+x]))
			se += d * d
		}
	}
	return 10 * math.Log10(255*255/math.Max(se/float64(w*h), 1e-10))
}
