package webtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc/metadata"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// BenchmarkFleetPageLiveAgents measures the fleet page, in Chromium, with
// a fleet of real simulated agents (deskside-fleetsim: enrolled with a
// token, mutual-TLS streams, inventory, health every 15 s) connected to
// the relay serving the page: DESKSIDE_BENCH_FLEET agents, 1,000 by
// default (10,000 fit this machine: the relay in this process holds one
// socket per agent, under the 20,000 open files a process may have, and
// the simulator spreads its agents over worker processes).
//
// Once every agent is connected it times the page's first render (a fresh
// document) and a filter, as BenchmarkFleetPage10k does. Then the page
// under the fleet's own live updates: how many it applied per second over
// 30 s of steady state, and an inventory change on a quarter of the
// agents at once (scripted in the simulator, at a fixed time after the
// fleet is up): how many updates the page applied and how long after the
// change began it had applied one per changed agent. A watcher
// of WatchDevices in this test, reading as fast as the relay sends, gives
// the same for the relay alone. Timings are reported, not asserted.
func BenchmarkFleetPageLiveAgents(b *testing.B) {
	n := 1000
	if v := os.Getenv("DESKSIDE_BENCH_FLEET"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("DESKSIDE_BENCH_FLEET=%q: want a positive number of agents", v)
		}
	}
	// The relay in this process holds a socket per agent; leave room for
	// the browser's connections, the store and the rest.
	if lim, ok := openFileLimit(); ok && uint64(n)+1000 > lim {
		b.Fatalf("%d agents need about %d open files in this process, and its limit is %d: raise it (ulimit -n) or run fewer (DESKSIDE_BENCH_FLEET)", n, n+1000, lim)
	}
	c := startConsole(b)
	bin := buildFleetsim(b)
	token := c.relay.Token(b, 2*time.Hour, uint32(n))
	c.signIn(b, "admin", servertest.AdminPassword)
	w := watchFleet(b, c.relay)

	// The inventory change comes eventAt after the fleet is up: time for
	// the render and filter rounds, then the 30 s of steady state.
	const eventAt, steadyFor = 75 * time.Second, 30 * time.Second
	sim := startFleetsim(b, bin, "--relay", c.relay.Addr, "--token", token, "--agents", strconv.Itoa(n),
		"--duration", (eventAt + 3*time.Minute).String(), "--event", fmt.Sprintf("%s:inventory=25%%", eventAt))
	upAt := sim.await(b, "up", 2*time.Minute+time.Duration(n)*150*time.Millisecond)
	b.Logf("%d agents connected (fleetsim: %s)", n, sim.line("up"))

	b.ResetTimer()
	fleetRounds(b, c)
	c.run(b, 30*time.Second, chromedp.WaitVisible(css(`.live.live-live`)))

	// Steady state: the fleet sends health, which changes no device row;
	// what the page gets is what the relay publishes.
	window := min(steadyFor, time.Until(upAt.Add(eventAt-2*time.Second)))
	if window < 10*time.Second {
		b.Fatalf("the render rounds ended %s before the inventory change: no steady window left (fewer rounds, or a later event)", time.Until(upAt.Add(eventAt)).Round(time.Second))
	}
	p0, w0 := pageCounters(b, c), w.count()
	time.Sleep(window)
	p1, w1 := pageCounters(b, c), w.count()
	steadyPage := float64(p1.Updates-p0.Updates) / window.Seconds()
	steadyRelay := float64(w1-w0) / window.Seconds()
	b.Logf("steady state over %s: the page applied %d updates (%.1f/s), the relay sent %d (%.1f/s)",
		window.Round(time.Second), p1.Updates-p0.Updates, steadyPage, w1-w0, steadyRelay)

	// The inventory change: the simulator prints the event as it sends it
	// to its workers, then how many agents changed.
	// The counts before it: the watcher's from its updates' times; the
	// page's from the end of the steady window, 2 s or more before (asked
	// after the event, the page could already have some of its updates).
	evAt := sim.await(b, "event", eventAt+time.Minute)
	pEv, wEv := p1, w.before(evAt)
	sim.await(b, "changes", time.Minute)
	changed, _ := strconv.Atoi(sim.line("changes"))
	// The relay has sent the change when this watcher has an update for
	// every agent that changed; the page has applied it when its counter
	// has as many (or, should the relay have conflated some for it, when
	// it stood still for 2 s). Not "when all is quiet": a few devices go
	// on changing now and then after the event (about one a second at
	// 10,000 agents), so the fleet is not silent again.
	relayLast := w.nth(b, wEv+changed, 3*time.Minute)
	const quiet = 2 * time.Second
	var pageLast time.Time
	var pEnd fleetCounters
	for deadline, last := time.Now().Add(3*time.Minute), -1; ; time.Sleep(50 * time.Millisecond) {
		before := time.Now()
		p := pageCounters(b, c)
		age := time.Duration(p.AgeMs * float64(time.Millisecond))
		got := p.Updates - pEv.Updates
		if got >= changed || (got > 0 && p.Updates == last && age >= quiet) {
			// Its last update was applied AgeMs before the page was asked.
			at := before.Add(time.Since(before) / 2)
			pageLast, pEnd = at.Add(-age), p
			break
		}
		last = p.Updates
		if time.Now().After(deadline) {
			b.Logf("the page applied %d updates of the %d changes in 3 minutes and did not stand still: its figures are up to its last update", got, changed)
			pageLast, pEnd = before.Add(-age), p
			break
		}
	}
	pageUpdates := pEnd.Updates - pEv.Updates
	catchUp, relayCatchUp := pageLast.Sub(evAt), relayLast.Sub(evAt)
	if pEnd.Renders != pEv.Renders {
		b.Logf("the page re-listed the devices during the change (%d renders): its watch was cut off or resynced", pEnd.Renders-pEv.Renders)
	}
	if id := w.id(wEv + changed); pEnd.Last != id {
		b.Logf("the page's last update was %s, the relay's %s (the order differs where the relay conflated the page's queue, or a later change came in)", pEnd.Last, id)
	}
	if after := w.count() - wEv - changed; after > 0 {
		w.mu.Lock()
		changedIDs, laterIDs := map[string]bool{}, map[string]bool{}
		for _, id := range w.ids[wEv : wEv+changed] {
			changedIDs[id] = true
		}
		again := 0
		for _, id := range w.ids[wEv+changed:] {
			if !laterIDs[id] && changedIDs[id] {
				again++
			}
			laterIDs[id] = true
		}
		w.mu.Unlock()
		b.Logf("%d further updates came after the change's, of %d devices (%d of them among the changed), until %s after it began",
			after, len(laterIDs), again, w.nthAt(w.count()).Sub(evAt).Round(time.Second))
	}
	b.Logf("inventory change on %d agents: the relay had sent as many updates %s after the change began; the page had applied %d, the last %s after (%.0f/s)",
		changed, relayCatchUp.Round(time.Millisecond), pageUpdates, catchUp.Round(time.Millisecond), float64(pageUpdates)/catchUp.Seconds())
	b.StopTimer()

	b.ReportMetric(float64(n), "agents")
	b.ReportMetric(steadyPage, "steady-updates/s")
	b.ReportMetric(float64(pageUpdates), "event-updates")
	b.ReportMetric(float64(pageUpdates)/catchUp.Seconds(), "event-updates/s")
	b.ReportMetric(float64(catchUp.Milliseconds()), "catch-up-ms")
	b.ReportMetric(float64(relayCatchUp.Milliseconds()), "relay-catch-up-ms")
	b.ReportMetric(0, "ns/op")
}

// fleetCounters are the fleet page's counters (console/web README).
type fleetCounters struct {
	Renders, Updates int
	Last             string
	AgeMs            float64 // since the last update was applied
}

func pageCounters(b *testing.B, c *console) fleetCounters {
	return value(b, c, 10*time.Second, chromedp.Evaluate[fleetCounters](`(() => {
		const f = window.desksideFleet;
		return { Renders: f.renders, Updates: f.updates, Last: f.last, AgeMs: f.updates ? performance.now() - f.lastAt : 1e9 };
	})()`))
}

// buildFleetsim builds deskside-fleetsim into a temporary directory.
func buildFleetsim(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "deskside-fleetsim")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/deskside/deskside/agent/cmd/deskside-fleetsim").CombinedOutput()
	if err != nil {
		b.Fatalf("build deskside-fleetsim: %v\n%s", err, out)
	}
	return bin
}

// fleetWatch is a WatchDevices client that counts what the relay sends.
type fleetWatch struct {
	mu  sync.Mutex
	at  []time.Time // when each update came
	ids []string    // and its device
	err error
}

// watchFleet watches the relay's devices as the admin until the benchmark ends.
func watchFleet(b *testing.B, r *servertest.Relay) *fleetWatch {
	b.Helper()
	cs := desksidev1.NewConsoleServiceClient(r.Dial(b))
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := cs.Login(ctx, &desksidev1.LoginRequest{Name: "admin", Password: servertest.AdminPassword})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	stream, err := cs.WatchDevices(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+resp.GetToken()), &desksidev1.WatchDevicesRequest{})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	w := &fleetWatch{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := stream.Recv()
			w.mu.Lock()
			if err != nil {
				w.err = err
				w.mu.Unlock()
				return
			}
			if d := m.GetDevice(); d != nil {
				w.at, w.ids = append(w.at, time.Now()), append(w.ids, d.GetId())
			}
			w.mu.Unlock()
		}
	}()
	b.Cleanup(func() { cancel(); <-done })
	return w
}

func (w *fleetWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.at)
}

// before counts the updates that came before t.
func (w *fleetWatch) before(t time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return sort.Search(len(w.at), func(i int) bool { return !w.at[i].Before(t) })
}

// id is the device of the k-th update (from 1).
func (w *fleetWatch) id(k int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ids[k-1]
}

// nthAt is when the k-th update (from 1) came.
func (w *fleetWatch) nthAt(k int) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.at[k-1]
}

// nth waits for the k-th update (from 1) and returns when it came.
func (w *fleetWatch) nth(b *testing.B, k int, timeout time.Duration) time.Time {
	b.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		w.mu.Lock()
		n, err := len(w.at), w.err
		w.mu.Unlock()
		if n >= k {
			return w.nthAt(k)
		}
		if err != nil {
			b.Fatalf("the test's device watch ended: %v", err)
		}
		if time.Now().After(deadline) {
			b.Fatalf("the relay sent %d updates of the %d awaited within %s", n, k, timeout)
		}
	}
}

// fleetsim is a running deskside-fleetsim whose output the benchmark
// follows: the moments it reports the fleet up, an event begun and the
// inventory changes made.
type fleetsim struct {
	mu    sync.Mutex
	out   strings.Builder
	seen  map[string]time.Time
	lines map[string]string
	news  chan struct{}
	ended chan struct{}
}

// fleetsimMarks are the simulator's lines the benchmark waits for (its
// printf in agent/fleetsim), the first group kept as the line's value.
var fleetsimMarks = map[string]*regexp.Regexp{
	"up":      regexp.MustCompile(`(all \d+ enrolled agents connected)`),
	"settle":  regexp.MustCompile(`(only \d+ of \d+ enrolled agents connected.*)`),
	"event":   regexp.MustCompile(`event: (inventory change.*)`),
	"changes": regexp.MustCompile(`inventory changes made: (\d+)`),
}

func startFleetsim(b *testing.B, bin string, args ...string) *fleetsim {
	b.Helper()
	cmd := exec.Command(bin, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	s := &fleetsim{seen: map[string]time.Time{}, lines: map[string]string{}, news: make(chan struct{}, 1), ended: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// The simulated agents stand in for thousands of other machines: on
	// this host they yield the CPU to the relay and the browser being
	// measured (nice 10, which the workers it starts inherit), and use
	// what those leave.
	if err := lowerPriority(cmd.Process.Pid); err != nil {
		b.Logf("the simulator runs at the default priority: %v", err)
	}
	waited := make(chan struct{})
	go func() {
		cmd.Wait()
		pw.Close()
		close(waited)
	}()
	go func() {
		defer close(s.ended)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			now, line := time.Now(), sc.Text()
			s.mu.Lock()
			s.out.WriteString(line + "\n")
			for k, re := range fleetsimMarks {
				if m := re.FindStringSubmatch(line); m != nil {
					if _, ok := s.seen[k]; !ok {
						s.seen[k], s.lines[k] = now, m[1]
					}
				}
			}
			s.mu.Unlock()
			select {
			case s.news <- struct{}{}:
			default:
			}
		}
		io.Copy(io.Discard, pr)
	}()
	b.Cleanup(func() {
		// Stop the fleet before the relay: SIGINT lets the simulator stop
		// its workers and print its summary.
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-waited:
		case <-time.After(2 * time.Minute):
			cmd.Process.Kill()
			<-waited
		}
		<-s.ended
		if b.Failed() || testing.Verbose() {
			b.Logf("deskside-fleetsim %s\n%s", strings.Join(args, " "), s.output())
		}
	})
	return s
}

func (s *fleetsim) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

func (s *fleetsim) line(mark string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lines[mark]
}

// await waits for a mark's line and returns when it was printed.
func (s *fleetsim) await(b *testing.B, mark string, timeout time.Duration) time.Time {
	b.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		at, ok := s.seen[mark]
		miss := s.lines["settle"]
		s.mu.Unlock()
		if ok {
			return at
		}
		if miss != "" {
			b.Fatalf("deskside-fleetsim: %s\n%s", miss, s.output())
		}
		select {
		case <-s.news:
		case <-s.ended:
			b.Fatalf("deskside-fleetsim ended before %q\n%s", mark, s.output())
		case <-deadline:
			b.Fatalf("deskside-fleetsim: no %q within %s\n%s", mark, timeout, s.output())
		}
	}
}
