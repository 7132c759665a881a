package webtest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/bus/natsbus"
	"github.com/deskside/deskside/relay/bus/natsbus/natstest"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/storetest"
)

// seedFleet stores n devices with varied summaries straight into the store.
func seedFleet(b *testing.B, st store.Store, n int) {
	ctx := context.Background()
	now := time.Now()
	data, _ := proto.Marshal(&desksidev1.Inventory{Hostname: "seeded"})
	models := []string{"Dell OptiPlex 7090", "Lenovo ThinkPad T14", "HP EliteBook 840", "Apple MacBook Pro"}
	for i := range n {
		id := fmt.Sprintf("dev-bench-%05d", i)
		d := store.Device{ID: id, Hostname: fmt.Sprintf("ws-%05d", i), OS: []string{"linux", "windows", "darwin"}[i%3], FirstSeen: now, LastSeen: now.Add(-time.Duration(i) * time.Second)}
		if err := st.CreateDevice(ctx, d); err != nil {
			b.Fatal(err)
		}
		sum := store.DeviceSummary{
			Model: models[i%len(models)], CPUModel: "Intel Core i5", MemoryBytes: uint64(4+4*(i%4)) << 30,
			DiskTotalBytes: 512 << 30, DiskFreeBytes: uint64(i%100) * (512 << 30) / 100, DiskUsedBytes: uint64(100-i%100) * (512 << 30) / 100, User: fmt.Sprintf("user%04d", i%5000),
		}
		if err := st.PutInventory(ctx, store.Inventory{DeviceID: id, CollectedAt: now, ReceivedAt: now, Data: data}, sum, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func awaitPromise(p *runtime.EvaluateParams) { v := true; p.AwaitPromise = &v }

// fleetTimes are one round of the fleet page's first render and filter.
type fleetTimes struct{ first, filter, listAt, listRPC time.Duration }

// fleetRounds runs b.N rounds of fleetRenderAndFilter and reports their
// medians (one slow round neither passes nor fails a figure), logging
// every round for the spread: first-render-ms, filter-ms, list-start-ms
// and list-rpc-ms.
func fleetRounds(b *testing.B, c *console) {
	var first, filter, listAt, listRPC []float64
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for range b.N {
		r := fleetRenderAndFilter(b, c)
		first = append(first, ms(r.first))
		filter = append(filter, ms(r.filter))
		listAt = append(listAt, ms(r.listAt))
		listRPC = append(listRPC, ms(r.listRPC))
	}
	for _, m := range []struct {
		name string
		v    []float64
	}{{"first-render-ms", first}, {"filter-ms", filter}, {"list-start-ms", listAt}, {"list-rpc-ms", listRPC}} {
		slices.Sort(m.v)
		b.Logf("%s over %d rounds: %v", m.name, len(m.v), m.v)
		b.ReportMetric(m.v[len(m.v)/2], m.name)
	}
}

// fleetRenderAndFilter opens the fleet page in a fresh document and times
// its first render (from navigation), where that time went, and a filter
// (RAM < 8 GiB) from its click to the filtered table in the DOM; it then
// turns the filter off again.
func fleetRenderAndFilter(b *testing.B, c *console) fleetTimes {
	var t fleetTimes
	// A fresh document each round, so the mark's time counts from its
	// navigation (HTML, the bundle, WhoAmI, ListDevices, the rows).
	// Without it the first round read the mark the sign-in had left,
	// timed from the sign-in page's load: typing the password and the
	// Login call were in the figure.
	c.run(b, 30*time.Second,
		chromedp.Navigate("about:blank"),
		chromedp.Navigate(c.url+"#/fleet"),
		chromedp.Poll[chromedp.Void](`(window.desksideFleet?.renders ?? 0) >= 1 && performance.getEntriesByName('fleet:first-render').length > 0`),
	)
	ms := value(b, c, 10*time.Second, chromedp.Evaluate[float64](`performance.getEntriesByName('fleet:first-render')[0].startTime`))
	t.first = time.Duration(ms * float64(time.Millisecond))
	// Where it went: until the list was asked for (document, bundle,
	// WhoAmI), the list's round trip, and the rest drawing the rows.
	ms = value(b, c, 10*time.Second, chromedp.Evaluate[float64](`performance.getEntriesByName('fleet:list')[0].startTime`))
	t.listAt = time.Duration(ms * float64(time.Millisecond))
	ms = value(b, c, 10*time.Second, chromedp.Evaluate[float64](`performance.getEntriesByName('fleet:listed')[0].startTime - performance.getEntriesByName('fleet:list')[0].startTime`))
	t.listRPC = time.Duration(ms * float64(time.Millisecond))
	ms = value(b, c, 30*time.Second, chromedp.Evaluate[float64](`new Promise(res => {
		const n = window.desksideFleet.renders;
		const t0 = performance.now();
		document.querySelector('[data-testid=filter-ram-below-8]').click();
		const iv = setInterval(() => {
			if (window.desksideFleet.renders > n) {
				clearInterval(iv);
				const m = performance.getEntriesByName('fleet:filter-applied');
				res(m[m.length - 1].startTime - t0);
			}
		}, 1);
	})`, awaitPromise))
	t.filter = time.Duration(ms * float64(time.Millisecond))
	// Leave the filter off for the next round.
	c.run(b, 10*time.Second, chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=filter-ram-below-8]').click()`))
	return t
}

// BenchmarkFleetPage10k measures, in Chromium, the fleet page with 10,000
// devices in the store: time from navigation (a fresh page load, signed
// in) to the first rendered table,
// and from a filter click to the filtered table in the DOM. Targets:
// ≤ 500 ms and ≤ 100 ms (reported, not asserted).
func BenchmarkFleetPage10k(b *testing.B) {
	c := startConsole(b)
	seedFleet(b, c.relay.Srv.Store(), 10000)
	c.signIn(b, "admin", servertest.AdminPassword)
	fleetRounds(b, c)
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFleetLiveUpdates measures how many live device updates per
// second the fleet page (10,000 devices, Chromium) absorbs without falling
// behind. The updates arrive as a second relay's do: announced on NATS
// (natsbus.NotifyDevice), read from the store by the relay serving the
// page, and streamed to it on WatchDevices. The rate doubles from 250/s,
// 5 s at each, over 9,999 devices; then one last device is announced. A
// rate is absorbed when that last update reaches the page within 1 s and
// the watch was not cut off. A watcher that cannot take every update gets
// each device's newest state (the relay conflates what waits for it), so
// the page shows fewer updates than were sent but never an old state.
func BenchmarkFleetLiveUpdates(b *testing.B) {
	natsURL, prefix := natstest.URL(b), natstest.Prefix()
	c := startConsoleOpts(b, servertest.Options{NATSURL: natsURL, NATSPrefix: prefix})
	const n = 10000
	seedFleet(b, c.relay.Srv.Store(), n)
	c.signIn(b, "admin", servertest.AdminPassword)
	c.run(b, 30*time.Second,
		chromedp.Navigate("about:blank"),
		chromedp.Navigate(c.url+"#/fleet"),
		chromedp.WaitVisible(css(`.live.live-live`)),
	)
	bus, err := natsbus.Open(natsURL, prefix, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bus.Close() })
	// The page's counters (console/web README: window.desksideFleet).
	count := func(key string) int {
		return value(b, c, 10*time.Second, chromedp.Evaluate[int](`window.desksideFleet.`+key))
	}
	lastUpdate := func() string {
		return value(b, c, 10*time.Second, chromedp.Evaluate[string](`window.desksideFleet.last`))
	}
	last := fmt.Sprintf("dev-bench-%05d", n-1)
	best, lagAtBest := 0, time.Duration(0)
	for b.Loop() {
		best = 0
		for rate := 250; rate <= 32000; rate *= 2 {
			updates, renders := count("updates"), count("renders")
			total := rate * 5
			start := time.Now()
			for i := range total {
				if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
					time.Sleep(d)
				}
				if err := bus.NotifyDevice(fmt.Sprintf("dev-bench-%05d", i%(n-1))); err != nil {
					b.Fatal(err)
				}
			}
			sent := time.Now()
			if err := bus.NotifyDevice(last); err != nil {
				b.Fatal(err)
			}
			lag := time.Duration(-1)
			for time.Since(sent) < 5*time.Second {
				if lastUpdate() == last {
					lag = time.Since(sent)
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			cutOff := count("renders") != renders
			got := count("updates") - updates
			b.Logf("%d updates/s for %s: the page took %d of %d (the rest conflated), the last one %s after it was sent (-1: not within 5 s), watch cut off: %v",
				rate, sent.Sub(start).Round(time.Millisecond), got, total+1, lag.Round(time.Millisecond), cutOff)
			if lag < 0 || lag > time.Second || cutOff {
				break
			}
			best, lagAtBest = rate, lag
			// The next rate starts once the page is idle again.
			time.Sleep(time.Second)
		}
		c.run(b, 30*time.Second, chromedp.WaitVisible(css(`.live.live-live`)))
	}
	b.ReportMetric(float64(best), "updates/s")
	b.ReportMetric(float64(lagAtBest.Microseconds())/1000, "lag-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkTicketsPage100k measures, in Chromium, the Tickets page with
// 100,000 tickets in the store (storetest.SeedTickets): time from
// navigation (a fresh page load, signed in) to the first rendered queue
// (all active tickets, 100 rows, with the total), and from choosing a priority in the filter to the
// filtered table in the DOM. Targets: ≤ 500 ms and ≤ 100 ms (reported,
// not asserted).
func BenchmarkTicketsPage100k(b *testing.B) {
	c := startConsole(b)
	storetest.SeedTickets(b, c.relay.Srv.Store(), storetest.TicketBenchSize)
	c.signIn(b, "admin", servertest.AdminPassword)
	var first, filter, listAt, listRPC time.Duration
	for range b.N {
		// A fresh document each round: the time counts from its navigation
		// (HTML, the bundle, WhoAmI, ListTickets, the table drawn).
		c.run(b, 30*time.Second,
			chromedp.Navigate("about:blank"),
			chromedp.Navigate(c.url+"#/tickets?queue=all"),
			chromedp.Poll[chromedp.Void](`performance.getEntriesByName('tickets:first-render').length > 0`),
		)
		if n := value(b, c, 10*time.Second, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=tk-row]').length`)); n != 100 {
			b.Fatalf("the first page shows %d tickets, want 100", n)
		}
		ms := value(b, c, 10*time.Second, chromedp.Evaluate[float64](`performance.getEntriesByName('tickets:first-render')[0].startTime`))
		first += time.Duration(ms * float64(time.Millisecond))
		// Where the first render's time went: until the list was asked
		// for (document and bundle; the page asks alongside WhoAmI), and
		// from then until the page had it decoded (the round trip, and
		// WhoAmI's if that ends later); the rest is drawing the rows.
		ms = value(b, c, 10*time.Second, chromedp.Evaluate[float64](`performance.getEntriesByName('tickets:list')[0].startTime`))
		listAt += time.Duration(ms * float64(time.Millisecond))
		ms = value(b, c, 10*time.Second, chromedp.Evaluate[float64](`performance.getEntriesByName('tickets:listed')[0].startTime - performance.getEntriesByName('tickets:list')[0].startTime`))
		listRPC += time.Duration(ms * float64(time.Millisecond))
		ms = value(b, c, 30*time.Second, chromedp.Evaluate[float64](`new Promise(res => {
			const n = +document.body.dataset.ticketsRenders;
			const sel = document.querySelector('[data-testid=tk-f-priority]');
			const t0 = performance.now();
			sel.value = 'URGENT';
			sel.dispatchEvent(new Event('change'));
			const iv = setInterval(() => {
				if (+document.body.dataset.ticketsRenders > n) {
					clearInterval(iv);
					const m = performance.getEntriesByName('tickets:render');
					res(m[m.length - 1].startTime - t0);
				}
			}, 1);
		})`, awaitPromise))
		filter += time.Duration(ms * float64(time.Millisecond))
		if got := value(b, c, 10*time.Second, chromedp.Evaluate[string](`[...document.querySelectorAll('[data-testid=tk-row] .tk-prio')].map(e => e.textContent).filter(t => t !== 'Urgent').join()`)); got != "" {
			b.Fatalf("the filtered page has other priorities: %s", got)
		}
	}
	b.ReportMetric(float64(first.Milliseconds())/float64(b.N), "first-render-ms")
	b.ReportMetric(float64(filter.Microseconds())/1000/float64(b.N), "filter-ms")
	b.ReportMetric(float64(listAt.Microseconds())/1000/float64(b.N), "list-start-ms")
	b.ReportMetric(float64(listRPC.Microseconds())/1000/float64(b.N), "list-rpc-ms")
	b.ReportMetric(0, "ns/op")
}
