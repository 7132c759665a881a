package webtest

import (
	"io"
	"log"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop"
	"github.com/deskside/deskside/agent/desktop/encode"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// benchXvfb starts a 1920×1080 Xvfb for a benchmark and returns its display.
func benchXvfb(b *testing.B) string {
	return startXvfb(b, 1920, 1080)
}

// painter fills a full-screen window with one colour at a time.
type painter struct {
	x   *xgb.Conn
	win xproto.Window
	gc  xproto.Gcontext
}

func newPainter(b *testing.B, display string) *painter {
	xgb.Logger = log.New(io.Discard, "", 0)
	x, err := xgb.NewConnDisplay(display)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(x.Close)
	scr := xproto.Setup(x).DefaultScreen(x)
	win, _ := xproto.NewWindowId(x)
	gc, _ := xproto.NewGcontextId(x)
	xproto.CreateWindow(x, scr.RootDepth, win, scr.Root, 0, 0, 1920, 1080, 0, xproto.WindowClassInputOutput, scr.RootVisual,
		xproto.CwBackPixel|xproto.CwOverrideRedirect, []uint32{0, 1})
	xproto.MapWindow(x, win)
	xproto.CreateGC(x, gc, xproto.Drawable(win), 0, nil)
	p := &painter{x: x, win: win, gc: gc}
	p.fill(0, 0, 0)
	return p
}

// fill paints the window and returns once the server has done it.
func (p *painter) fill(r, g, bl uint8) {
	xproto.ChangeGC(p.x, p.gc, xproto.GcForeground, []uint32{uint32(r)<<16 | uint32(g)<<8 | uint32(bl)})
	xproto.PolyFillRectangle(p.x, xproto.Drawable(p.win), p.gc, []xproto.Rectangle{{Width: 1920, Height: 1080}})
	xproto.GetInputFocus(p.x).Reply()
}

// watchJS records, for every frame the <video> presents, the wall-clock
// time at which its centre pixel turned bright red (requestVideoFrameCallback)
// and when the browser had received that frame's last packet (its
// receiveTime), which splits the latency into the sending side (agent,
// relay, network) and the browser's (jitter buffer, decode, paint).
const watchJS = `(() => {
  const v = document.querySelector('[data-testid=session-video]');
  const cv = document.createElement('canvas'); cv.width = 8; cv.height = 8;
  const g = cv.getContext('2d', {willReadFrequently: true});
  window.__g2g = {red: [], recv: [], last: false};
  const tick = (now, meta) => {
    g.drawImage(v, v.videoWidth/2 - 4, v.videoHeight/2 - 4, 8, 8, 0, 0, 8, 8);
    const p = g.getImageData(4, 4, 1, 1).data;
    const red = p[0] > 200 && p[1] < 60 && p[2] < 60;
    if (red && !window.__g2g.last) {
      window.__g2g.red.push(performance.timeOrigin + meta.presentationTime);
      window.__g2g.recv.push(meta.receiveTime ? performance.timeOrigin + meta.receiveTime : 0);
    }
    window.__g2g.last = red;
    v.requestVideoFrameCallback(tick);
  };
  v.requestVideoFrameCallback(tick);
  return true;
})()`

// BenchmarkGlassToGlass measures, on loopback, the time from the test
// client changing the screen's colour to Chromium presenting a video
// frame of the new colour (requestVideoFrameCallback), through the real
// agent, relay and viewer. Targets: p50 ≤ 50 ms, p95 ≤ 80 ms.
func BenchmarkGlassToGlass(b *testing.B) {
	if !encode.Available {
		b.Skip("no VP8 encoder in this build")
	}
	display := benchXvfb(b)
	p := newPainter(b, display)
	c := startConsole(b)
	st := c.relay.Enroll(b, "g2g-desk")
	servertest.RunAgent(b, st, servertest.AgentOptions{
		Inventory: staticInv{}, Health: staticHealth{}, Hostname: "g2g-desk",
		Desktop: desktop.NewManager(desktop.Options{Display: display, Logger: servertest.DiscardLogger()}),
	})
	cs, ctx := c.relay.Admin(b)
	if _, err := cs.SetDevicePolicy(ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: st.DeviceID, UnattendedAllowed: true}); err != nil {
		b.Fatal(err)
	}
	c.signIn(b, "admin", servertest.AdminPassword)
	c.run(b, 60*time.Second,
		chromedp.Navigate(c.url+"#/devices/"+st.DeviceID+"/session?control=0"),
		chromedp.WaitVisible(css(`[data-testid=session-state][data-state=live]`)),
		chromedp.Poll[chromedp.Void](`(() => { const v = document.querySelector('[data-testid=session-video]'); return v && v.videoWidth > 0 && v.currentTime > 0; })()`),
		chromedp.Evaluate[chromedp.Void](watchJS),
	)
	const rounds = 40
	var lat, sendSide, browserSide []time.Duration
	for i := range rounds {
		p.fill(0, 0, 0)
		// Wait until the viewer shows black, so the next change is a clean edge.
		c.run(b, 10*time.Second, chromedp.Poll[chromedp.Void](`window.__g2g.last === false`))
		time.Sleep(50 * time.Millisecond)
		before := len(eval[[]float64](b, c, `window.__g2g.red`))
		t0 := time.Now()
		p.fill(255, 0, 0)
		var got []float64
		deadline := time.Now().Add(5 * time.Second)
		for len(got) <= before && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			got = eval[[]float64](b, c, `window.__g2g.red`)
		}
		if len(got) <= before {
			b.Fatalf("round %d: the red screen never reached the browser", i)
		}
		ms := got[len(got)-1] - float64(t0.UnixNano())/1e6
		lat = append(lat, time.Duration(ms*float64(time.Millisecond)))
		if recv := eval[[]float64](b, c, `window.__g2g.recv`); len(recv) == len(got) && recv[len(recv)-1] > 0 {
			r := recv[len(recv)-1]
			sendSide = append(sendSide, time.Duration((r-float64(t0.UnixNano())/1e6)*float64(time.Millisecond)))
			browserSide = append(browserSide, time.Duration((got[len(got)-1]-r)*float64(time.Millisecond)))
		}
	}
	slices.Sort(lat)
	if len(sendSide) > 0 {
		// Where it went: until the frame's last packet was in the browser,
		// and from then until it was on screen.
		slices.Sort(sendSide)
		slices.Sort(browserSide)
		b.Logf("until received: p50 %v p95 %v max %v; received to presented: p50 %v p95 %v max %v",
			sendSide[len(sendSide)/2], sendSide[len(sendSide)*95/100], sendSide[len(sendSide)-1],
			browserSide[len(browserSide)/2], browserSide[len(browserSide)*95/100], browserSide[len(browserSide)-1])
		b.ReportMetric(float64(sendSide[len(sendSide)*95/100].Microseconds())/1000, "received-p95-ms")
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("glass-to-glass over %d changes: min %v p50 %v p95 %v max %v", rounds, lat[0], lat[len(lat)/2], lat[len(lat)*95/100], lat[len(lat)-1])
}
