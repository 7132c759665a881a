package desktop_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image/color"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/deskside/deskside/agent/desktop"
	"github.com/deskside/deskside/agent/desktop/internal/testclient"
	"github.com/deskside/deskside/agent/desktop/internal/viewertest"
	"github.com/deskside/deskside/agent/desktop/internal/xvfb"
	"github.com/deskside/deskside/agent/desktop/session"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// The desktop benchmarks run a 1920×1080 Xvfb with the test X client
// drawing on it, a relay (servertest) and an agent serving sessions on
// that display, and open sessions with the Go viewer (viewertest), which
// decodes every frame. Everything stays on loopback; media flows directly
// between the peers (host candidates), signaling through the relay.
// Targets are reported with b.ReportMetric, never asserted.

const (
	benchW, benchH = 1920, 1080
	// measureFor is how long each figure is measured.
	measureFor = 5 * time.Second
)

// benchDesk is a display with the test client, a relay and an enrolled
// device whose policy allows unattended sessions.
type benchDesk struct {
	xs     *xvfb.Server
	tc     *testclient.Client
	relay  *servertest.Relay
	cs     desksidev1.ConsoleServiceClient
	ctx    context.Context
	device string
	runner *countingRunner // nil when the agent is a separate process
}

// countingRunner knows how many sessions the in-process agent is running,
// so a benchmark can wait for one to end before it starts the next.
type countingRunner struct {
	*session.Manager
	active atomic.Int32
}

func (c *countingRunner) Run(ctx context.Context, req *desksidev1.StartDesktop, signal func(*desksidev1.DesktopSignal) error) string {
	c.active.Add(1)
	defer c.active.Add(-1)
	return c.Manager.Run(ctx, req, signal)
}

// newBenchDesk starts the display, the test client and the relay.
func newBenchDesk(b *testing.B) *benchDesk {
	b.Helper()
	xs := xvfb.StartWith(b, xvfb.Config{Width: benchW, Height: benchH})
	tc, err := testclient.Start(xs.Display)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tc.Close() })
	r := servertest.Start(b, servertest.Options{})
	cs, ctx := r.Admin(b)
	return &benchDesk{xs: xs, tc: tc, relay: r, cs: cs, ctx: ctx}
}

// runAgentInProcess enrolls and runs the real agent link with the real
// desktop manager in this process.
func (d *benchDesk) runAgentInProcess(b *testing.B) {
	b.Helper()
	st := d.relay.Enroll(b, "desk")
	d.runner = &countingRunner{Manager: desktop.NewManager(desktop.Options{Display: d.xs.Display, Logger: servertest.DiscardLogger()})}
	servertest.RunAgent(b, st, servertest.AgentOptions{Inventory: staticInventory{}, Health: staticHealth{}, Desktop: d.runner})
	d.device = st.DeviceID
	d.allowSessions(b)
}

// allowSessions waits for the device to be online and allows unattended
// sessions on it.
func (d *benchDesk) allowSessions(b *testing.B) {
	b.Helper()
	servertest.CheckFor(b, 30*time.Second, 20*time.Millisecond, func() error {
		dev, err := d.cs.GetDevice(d.ctx, &desksidev1.GetDeviceRequest{Id: d.device})
		if err != nil || !dev.GetDevice().GetOnline() {
			return fmt.Errorf("agent not online (%v)", err)
		}
		return nil
	})
	if _, err := d.cs.SetDevicePolicy(d.ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: d.device, UnattendedAllowed: true}); err != nil {
		b.Fatal(err)
	}
}

// open opens a session and waits for its first decoded frame.
func (d *benchDesk) open(b *testing.B) *viewertest.Viewer {
	b.Helper()
	v, err := viewertest.Open(b, d.cs, d.ctx, d.device, viewertest.Options{Quiet: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := v.FirstFrame(30 * time.Second); err != nil {
		b.Fatal(err)
	}
	return v
}

// benchWindow is what the viewer received over a measurement window.
type benchWindow struct {
	viewertest.Stats
	wall time.Duration
	// fps is the decoded frame rate (viewertest.Stats.FrameRate).
	fps float64
	// hostBusy is the share of the host's CPU time spent busy (by any
	// process) over the window: on a shared machine, other work shows here.
	hostBusy float64
}

// peerStats are counters from the viewer's WebRTC statistics, to tell
// apart what the transport carried: video (with NACK-triggered
// retransmissions), RTCP, data channels.
type peerStats struct {
	pairBytes, pairPackets          uint64 // the candidate pairs: everything received
	rtpBytes, rtpHeader, rtpPackets uint64 // inbound video, as the RTP stack counted it
	nacks, plis, lost               int64  // sent by the viewer; lost as the receiver reports
	dataBytes                       uint64 // received on data channels (messages)
}

func peerCounters(pc *webrtc.PeerConnection) peerStats {
	var s peerStats
	for _, st := range pc.GetStats() {
		switch st := st.(type) {
		case webrtc.ICECandidatePairStats:
			s.pairBytes += st.BytesReceived
			s.pairPackets += uint64(st.PacketsReceived)
		case webrtc.InboundRTPStreamStats:
			s.rtpBytes += st.BytesReceived
			s.rtpHeader += st.HeaderBytesReceived
			s.rtpPackets += uint64(st.PacketsReceived)
			s.nacks += int64(st.NACKCount)
			s.plis += int64(st.PLICount)
			s.lost += int64(st.PacketsLost)
		case webrtc.DataChannelStats:
			s.dataBytes += st.BytesReceived
		}
	}
	return s
}

func (s peerStats) sub(e peerStats) string {
	return fmt.Sprintf("candidate pairs %d packets, %d bytes; inbound video %d packets, %d payload + %d header bytes, %d lost, %d NACKs, %d PLIs sent; data channels %d bytes",
		s.pairPackets-e.pairPackets, s.pairBytes-e.pairBytes, s.rtpPackets-e.rtpPackets, s.rtpBytes-e.rtpBytes, s.rtpHeader-e.rtpHeader,
		s.lost-e.lost, s.nacks-e.nacks, s.plis-e.plis, s.dataBytes-e.dataBytes)
}

// measure returns the viewer's counters' growth over d.
func measureViewer(v *viewertest.Viewer, d time.Duration) benchWindow {
	busy0, total0 := hostCPU()
	s0, t0 := v.Stats(), time.Now()
	time.Sleep(d)
	s1, t1 := v.Stats(), time.Now()
	busy1, total1 := hostCPU()
	w := benchWindow{Stats: s1.Sub(s0), wall: t1.Sub(t0), fps: s1.FrameRate(s0)}
	if total1 > total0 {
		w.hostBusy = float64(busy1-busy0) / float64(total1-total0)
	}
	return w
}

// hostCPU returns the busy and total CPU time of the host (/proc/stat), in
// clock ticks.
func hostCPU() (busy, total int64) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	for i, f := range strings.Fields(line)[1:] {
		if i >= 8 { // guest time is already counted in user time
			break
		}
		n, _ := strconv.ParseInt(f, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// reportTraffic reports the received bit rates and decoded frame rate.
func reportTraffic(b *testing.B, w benchWindow) {
	s, secs := w.Stats, w.wall.Seconds()
	b.ReportMetric(float64(s.TransportBytes)*8/1000/secs, "kbit/s")
	b.ReportMetric(float64(s.RTPBytes)*8/1000/secs, "video-kbit/s")
	b.ReportMetric(w.fps, "fps")
	b.ReportMetric(float64(s.Gaps), "gaps")
	b.Logf("over %v: %d transport bytes, %d RTP packets (%d bytes), %d frames decoded, %d gaps, %d PLIs; host CPU %.0f%% busy",
		w.wall.Round(time.Millisecond), s.TransportBytes, s.Packets, s.RTPBytes, s.Decoded, s.Gaps, s.PLIs, 100*w.hostBusy)
}

// BenchmarkDesktopSessionStart measures StartDesktopSession request →
// first decoded frame at the Go viewer on a static 1920×1080 screen,
// over max(b.N, 5) sessions one after another. Target ≤ 1 s.
func BenchmarkDesktopSessionStart(b *testing.B) {
	d := newBenchDesk(b)
	d.runAgentInProcess(b)
	rounds := max(b.N, 5)
	lat := make([]time.Duration, 0, rounds)
	for len(lat) < rounds {
		v, err := viewertest.Open(b, d.cs, d.ctx, d.device, viewertest.Options{Quiet: true})
		if status.Code(err) == codes.ResourceExhausted {
			time.Sleep(50 * time.Millisecond) // the relay still counts the last session
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		at, err := v.FirstFrame(30 * time.Second)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, at.Sub(v.Requested))
		v.Close()
		servertest.CheckFor(b, 15*time.Second, 10*time.Millisecond, func() error {
			if n := d.runner.active.Load(); n != 0 {
				return fmt.Errorf("%d sessions still running on the agent", n)
			}
			return nil
		})
	}
	b.Logf("request → first decoded frame: %v", lat)
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "first-frame-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-first-frame-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDesktopFrameRate counts the frames the viewer decodes per
// second over 5 s (after 1 s of warm-up) while the test client repaints
// the whole 1920×1080 screen in a new colour, with moving squares, 60
// times a second (the agent captures at most 30). Target ≥ 30 fps.
func BenchmarkDesktopFrameRate(b *testing.B) {
	d := newBenchDesk(b)
	d.runAgentInProcess(b)
	v := d.open(b)
	stop := animate(b, 60, continuousScene(d.tc))
	defer stop()
	time.Sleep(time.Second) // warm up: bitrate and encoder settle
	w := measureViewer(v, measureFor)
	stop()
	reportTraffic(b, w)
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDesktopBitrate measures what the viewer receives per second
// (everything the ICE transport delivers: video, RTCP, data channel) over
// 5 s at 1920×1080 in three scenes, one session for all:
//
//   - idle: a page of text that does not change (target ≤ 50 kbit/s);
//   - typing: text-like glyphs appear on a white page at 8 characters a
//     second, the cursor following (target ≤ 300 kbit/s);
//   - scrolling: a full screen of text scrolls up 3 pixels a frame at 30
//     frames a second (target ≤ 1.5 Mbit/s).
func BenchmarkDesktopBitrate(b *testing.B) {
	d := newBenchDesk(b)
	d.runAgentInProcess(b)
	v := d.open(b)
	page := newTextPage(benchW, benchH)
	b.Run("idle", func(b *testing.B) {
		if err := page.draw(d.tc, 0); err != nil {
			b.Fatal(err)
		}
		time.Sleep(2 * time.Second) // the page's frames arrive, then silence
		reportTraffic(b, measureViewer(v, measureFor))
		b.ReportMetric(0, "ns/op")
	})
	b.Run("typing", func(b *testing.B) {
		if err := d.tc.FillRects(pageWhite, []testclient.Rect{{W: benchW, H: benchH}}); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second)
		stop := animate(b, 8, page.typist(d.tc))
		defer stop()
		time.Sleep(time.Second)
		w := measureViewer(v, measureFor)
		stop()
		reportTraffic(b, w)
		b.ReportMetric(0, "ns/op")
	})
	b.Run("scrolling", func(b *testing.B) {
		if err := page.draw(d.tc, 0); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second)
		stop := animate(b, 30, page.scroller(d.tc, 3))
		defer stop()
		time.Sleep(time.Second)
		p0 := peerCounters(v.PC)
		w := measureViewer(v, measureFor)
		p1 := peerCounters(v.PC)
		stop()
		b.Logf("viewer's peer connection over the window: %s", p1.sub(p0))
		reportTraffic(b, w)
		b.ReportMetric(0, "ns/op")
	})
}

// BenchmarkDesktopAgentRSS runs the real deskside-agent binary (built
// here, enrolled with `deskside-agent enroll`, run with DISPLAY and
// --display set to the Xvfb), opens a session with the Go viewer, lets the
// screen change 60 times a second for 5 s and reports the agent process's
// VmRSS (target ≤ 100 MB), its peak (VmHWM) and its RSS before the session.
func BenchmarkDesktopAgentRSS(b *testing.B) {
	d := newBenchDesk(b)
	dir := b.TempDir()
	bin := filepath.Join(dir, "deskside-agent")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/deskside/deskside/agent/cmd/deskside-agent").CombinedOutput(); err != nil {
		b.Fatalf("build deskside-agent: %v\n%s", err, out)
	}
	state := filepath.Join(dir, "state")
	out, err := exec.Command(bin, "enroll", "--relay", d.relay.Addr, "--token", d.relay.Token(b, time.Hour, 1), "--state", state).CombinedOutput()
	if err != nil {
		b.Fatalf("enroll: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Enrolled as device (\S+) `).FindSubmatch(out)
	if m == nil {
		b.Fatalf("enroll printed no device id:\n%s", out)
	}
	d.device = string(m[1])
	agent := exec.Command(bin, "run", "--state", state, "--display", d.xs.Display, "--log-format", "text")
	agent.Env = append(os.Environ(), "DISPLAY="+d.xs.Display) // $XAUTHORITY is the Xvfb's
	var logs benchLog
	agent.Stdout, agent.Stderr = &logs, &logs
	if err := agent.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		agent.Process.Signal(os.Interrupt)
		agent.Wait()
		if b.Failed() {
			b.Logf("agent log:\n%s", logs.String())
		}
	}()
	d.allowSessions(b)
	pid := agent.Process.Pid
	time.Sleep(2 * time.Second) // start-up: first inventory and health sample
	idle := procStatus(b, pid, "VmRSS")

	v := d.open(b)
	stop := animate(b, 60, continuousScene(d.tc))
	defer stop()
	w := measureViewer(v, measureFor)
	rss, peak := procStatus(b, pid, "VmRSS"), procStatus(b, pid, "VmHWM")
	stop()
	fps := w.fps
	b.Logf("agent RSS %.1f MB before the session, %.1f MB after %v of changing screen (peak %.1f MB; anonymous %.1f MB, files %.1f MB, shared memory %.1f MB); viewer decoded %.1f fps; host CPU %.0f%% busy",
		idle/(1<<20), rss/(1<<20), w.wall.Round(time.Millisecond), peak/(1<<20),
		procStatus(b, pid, "RssAnon")/(1<<20), procStatus(b, pid, "RssFile")/(1<<20), procStatus(b, pid, "RssShmem")/(1<<20), fps, 100*w.hostBusy)
	logSmaps(b, pid, 12)
	b.ReportMetric(rss/(1<<20), "RSS-MB")
	b.ReportMetric(peak/(1<<20), "peak-RSS-MB")
	b.ReportMetric(idle/(1<<20), "idle-RSS-MB")
	b.ReportMetric(fps, "fps")
	b.ReportMetric(0, "ns/op")
}

// logSmaps logs the n mappings of process pid with the most resident
// memory (/proc/PID/smaps), to show where the RSS is: the Go heap, the C
// heap (glibc's main arena is [heap], other arenas and large allocations
// are anonymous mappings), the MIT-SHM segment (SYSV), libraries.
func logSmaps(b *testing.B, pid, n int) {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		b.Logf("smaps: %v", err)
		return
	}
	type mapping struct {
		head          string
		size, rss, pr int // kB
	}
	var maps []mapping
	var anon, anonMaps int
	for line := range strings.Lines(string(raw)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") || strings.Contains(f[0], "-") { // a mapping's header
			m := mapping{head: f[0]}
			if len(f) >= 6 {
				m.head += " " + filepath.Base(f[5])
			} else {
				m.head += " (anonymous)"
			}
			maps = append(maps, m)
			continue
		}
		if len(maps) == 0 || len(f) < 2 {
			continue
		}
		kb, _ := strconv.Atoi(f[1])
		m := &maps[len(maps)-1]
		switch f[0] {
		case "Size:":
			m.size = kb
		case "Rss:":
			m.rss = kb
		case "Private_Dirty:":
			m.pr = kb
		case "Anonymous:":
			if kb > 0 {
				anon += kb
				anonMaps++
			}
		}
	}
	slices.SortFunc(maps, func(a, b mapping) int { return b.rss - a.rss })
	var sb strings.Builder
	fmt.Fprintf(&sb, "agent mappings by RSS (%d mappings, %d with anonymous pages holding %.1f MB):\n", len(maps), anonMaps, float64(anon)/1024)
	fmt.Fprintf(&sb, "%10s %10s %10s  %s\n", "size kB", "rss kB", "dirty kB", "mapping")
	for _, m := range maps[:min(n, len(maps))] {
		fmt.Fprintf(&sb, "%10d %10d %10d  %s\n", m.size, m.rss, m.pr, m.head)
	}
	b.Log(sb.String())
	if dst := os.Getenv("DESKSIDE_BENCH_SMAPS"); dst != "" { // the whole file, for a closer look
		if err := os.WriteFile(dst, raw, 0o644); err != nil {
			b.Logf("smaps: %v", err)
		}
	}
}

// procStatus returns a kB field of /proc/PID/status in bytes.
func procStatus(b *testing.B, pid int, field string) float64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb * 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// benchLog collects a child process's output.
type benchLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *benchLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *benchLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// animate calls step hz times a second (step gets the step number) until
// the returned stop is called (or b ends); stop waits for the last step.
// A failing step fails b.
func animate(b *testing.B, hz int, step func(n int) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var steps atomic.Int64
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second / time.Duration(hz))
		defer tick.Stop()
		for n := 0; ; n++ {
			if err := step(n); err != nil {
				b.Errorf("draw: %v", err)
				return
			}
			steps.Add(1)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	t0 := time.Now()
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			b.Logf("drew %d steps in %v (%.1f/s, asked for %d/s)", steps.Load(), time.Since(t0).Round(time.Millisecond),
				float64(steps.Load())/time.Since(t0).Seconds(), hz)
		})
	}
	b.Cleanup(stop)
	return stop
}

var (
	pageWhite = color.RGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}
	pageInk   = color.RGBA{R: 0x20, G: 0x20, B: 0x20, A: 0xff}
)

// continuousScene repaints the whole screen in a new colour each step and
// draws 24 squares that move across it.
func continuousScene(tc *testclient.Client) func(int) error {
	w, h := tc.Size()
	return func(n int) error {
		bg := hueColor(n * 3)
		if err := tc.FillRects(bg, []testclient.Rect{{W: w, H: h}}); err != nil {
			return err
		}
		sq := make([]testclient.Rect, 0, 24)
		for i := range 24 {
			x := (i%6)*w/6 + (n*7+i*31)%(w/6-160)
			y := (i/6)*h/4 + (n*5+i*17)%(h/4-160)
			sq = append(sq, testclient.Rect{X: x, Y: y, W: 160, H: 160})
		}
		return tc.FillRects(hueColor(n*3+180), sq)
	}
}

// hue is a saturated colour around the colour wheel (degrees).
func hueColor(deg int) color.RGBA {
	deg = (deg%360 + 360) % 360
	x := uint8(255 * (60 - absInt(deg%120-60)) / 60)
	switch deg / 60 {
	case 0:
		return color.RGBA{R: 255, G: x, A: 255}
	case 1:
		return color.RGBA{R: x, G: 255, A: 255}
	case 2:
		return color.RGBA{G: 255, B: x, A: 255}
	case 3:
		return color.RGBA{G: x, B: 255, A: 255}
	case 4:
		return color.RGBA{R: x, B: 255, A: 255}
	}
	return color.RGBA{R: 255, B: x, A: 255}
}

func absInt(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// Text-like pictures: glyphs are 2–4 strokes in a 9×18 cell, set in lines
// of words with a ragged right edge and the odd blank line, in dark ink on
// white, the way an editor shows source or prose.
const (
	cellW, cellH = 9, 18
	marginX      = 48
)

type textPage struct {
	w, h    int
	glyphs  [][]testclient.Rect // in cell coordinates
	perLine int
}

func newTextPage(w, h int) *textPage {
	p := &textPage{w: w, h: h, perLine: (w - 2*marginX) / cellW}
	r := rand.New(rand.NewPCG(1, 2))
	for range 64 {
		var g []testclient.Rect
		for range 2 + r.IntN(3) {
			switch r.IntN(3) {
			case 0: // stem
				hh := 6 + r.IntN(6)
				g = append(g, testclient.Rect{X: 1 + r.IntN(6), Y: 14 - hh, W: 1 + r.IntN(2), H: hh})
			case 1: // bar
				g = append(g, testclient.Rect{X: 1 + r.IntN(3), Y: 4 + r.IntN(10), W: 4 + r.IntN(4), H: 1 + r.IntN(2)})
			default: // bowl or dot
				s := 2 + r.IntN(4)
				g = append(g, testclient.Rect{X: 1 + r.IntN(7-s+1), Y: 14 - s - r.IntN(4), W: s, H: s})
			}
		}
		p.glyphs = append(p.glyphs, g)
	}
	return p
}

// line returns line k of the endless document: glyph numbers, -1 for a
// space.
func (p *textPage) line(k int) []int {
	r := rand.New(rand.NewPCG(uint64(k), 7))
	if r.IntN(8) == 0 {
		return nil // paragraph break
	}
	n := min(p.perLine, 30+r.IntN(p.perLine-30))
	indent := 4 * r.IntN(4)
	out := make([]int, 0, n)
	for range indent {
		out = append(out, -1)
	}
	for len(out) < n {
		for range 2 + r.IntN(8) {
			out = append(out, r.IntN(len(p.glyphs)))
		}
		out = append(out, -1)
	}
	return out[:n]
}

// glyphRects appends glyph g's strokes at cell (x, y) in pixels.
func (p *textPage) glyphRects(dst []testclient.Rect, g, x, y int) []testclient.Rect {
	for _, s := range p.glyphs[g] {
		dst = append(dst, testclient.Rect{X: x + s.X, Y: y + s.Y, W: s.W, H: s.H})
	}
	return dst
}

// rows returns the strokes of the document rows [y0, y1) (document
// pixels), clipped to them, placed at window row y - top.
func (p *textPage) rows(y0, y1, top int) []testclient.Rect {
	var out []testclient.Rect
	for k := y0 / cellH; k*cellH < y1; k++ {
		var line []testclient.Rect
		for i, g := range p.line(k) {
			if g >= 0 {
				line = p.glyphRects(line, g, marginX+i*cellW, k*cellH)
			}
		}
		for _, r := range line {
			a, z := max(r.Y, y0), min(r.Y+r.H, y1)
			if a < z {
				out = append(out, testclient.Rect{X: r.X, Y: a - top, W: r.W, H: z - a})
			}
		}
	}
	return out
}

// draw paints the page with document row top at the top of the window.
func (p *textPage) draw(tc *testclient.Client, top int) error {
	if err := tc.FillRects(pageWhite, []testclient.Rect{{W: p.w, H: p.h}}); err != nil {
		return err
	}
	return tc.FillRects(pageInk, p.rows(top, top+p.h, top))
}

// scroller scrolls the page up dy pixels a step, painting the rows that
// come in at the bottom; the page must show document row 0 at the top.
func (p *textPage) scroller(tc *testclient.Client, dy int) func(int) error {
	top := 0
	return func(int) error {
		top += dy
		return tc.ScrollUp(dy, pageWhite, pageInk, p.rows(top+p.h-dy, top+p.h, top))
	}
}

// typist types the document onto a white page, one character a step,
// with a 2-pixel cursor bar after the last character.
func (p *textPage) typist(tc *testclient.Client) func(int) error {
	k, i := 0, 0 // line, character
	line := p.line(0)
	cursor := func(k, i int) testclient.Rect {
		return testclient.Rect{X: marginX + i*cellW, Y: k*cellH + 1, W: 2, H: cellH - 2}
	}
	last := cursor(0, 0)
	return func(int) error {
		for i >= len(line) { // on to the next non-empty line
			k, i = k+1, 0
			if (k+1)*cellH > p.h {
				k = 0
			}
			line = p.line(k)
		}
		var strokes []testclient.Rect
		if g := line[i]; g >= 0 {
			strokes = p.glyphRects(nil, g, marginX+i*cellW, k*cellH)
		}
		i++
		if err := tc.FillRects(pageWhite, []testclient.Rect{last}); err != nil {
			return err
		}
		last = cursor(k, i)
		return tc.FillRects(pageInk, append(strokes, last))
	}
}
