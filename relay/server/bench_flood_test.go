package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
)

// BenchmarkIngestUnderFlood measures the Ack latency of 1,000 agents
// sending health normally (one sample every 2 s each, 500 reports/s in
// all, each agent its own mutual-TLS connection) for 20 s without and 20 s
// with one more agent flooding (reports of 1,000 samples and inventories
// as fast as its stream takes them). The flooder is kept connected
// (DisconnectAfter is set out of reach) for the whole phase; the other
// limits are the defaults, so after each refusal the relay stops reading
// its stream for up to a second (Ingest.Pause). Target: p99 under flood
// within 2× of the p99 without.
func BenchmarkIngestUnderFlood(b *testing.B) {
	const (
		agents   = 1000
		interval = 2 * time.Second
		phase    = 20 * time.Second
	)
	r := servertest.Start(b, servertest.Options{Modify: func(c *server.Config) {
		c.HealthInterval = interval
		c.Ingest.DisconnectAfter = 1 << 30
	}})
	states := r.EnrollMany(b, agents+1, func(i int) string { return fmt.Sprintf("ingest-%04d", i) })
	floodSt := states[agents]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	conns := make([]*mtlsAgent, agents)
	inParallel(b, agents, 32, "connect", func(i int) (err error) {
		conns[i], err = connectAgent(ctx, states[i])
		return err
	})

	// Every agent sends at its own phase of the interval.
	var mu sync.Mutex
	lat := map[string][]time.Duration{}
	label := "warmup"
	refused := 0
	stop := make(chan struct{})
	var run sync.WaitGroup
	for i, a := range conns {
		run.Add(1)
		go func() {
			defer run.Done()
			select {
			case <-time.After(rand.N(interval)):
			case <-stop:
				return
			}
			s := &steadyAgent{}
			done := make(chan error, 1)
			go func() { done <- s.run(a, interval, stop) }()
			// Collect as they come, labelled by the phase they ended in.
			seen := 0
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case err := <-done:
					if err != nil {
						b.Errorf("agent %d: %v", i, err)
					}
					return
				case <-tick.C:
				}
				got := s.since(seen)
				seen += len(got)
				mu.Lock()
				lat[label] = append(lat[label], got...)
				refused += int(s.refused.Swap(0))
				mu.Unlock()
			}
		}()
	}
	setPhase := func(l string) {
		mu.Lock()
		label = l
		mu.Unlock()
	}
	time.Sleep(5 * time.Second) // every agent has started sending
	setPhase("normal")
	time.Sleep(phase)
	setPhase("between")
	flooder, err := connectAgent(ctx, floodSt)
	if err != nil {
		b.Fatal(err)
	}
	fctx, fcancel := context.WithTimeout(ctx, phase+time.Second)
	floodDone := make(chan floodResult, 1)
	go func() { floodDone <- flood(fctx, flooder) }()
	time.Sleep(time.Second) // the flood is under way
	setPhase("flood")
	time.Sleep(phase)
	setPhase("after")
	fcancel()
	res := <-floodDone
	close(stop)
	run.Wait()

	mu.Lock()
	defer mu.Unlock()
	if refused > 0 {
		b.Errorf("%d normal reports were refused", refused)
	}
	if res.limited == 0 {
		b.Error("the flooder was never refused")
	}
	normal, flooded := lat["normal"], lat["flood"]
	p99n, p99f := percentile(normal, .99), percentile(flooded, .99)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.Logf("normal: %d Acks, p50 %s p99 %s; under flood: %d Acks, p50 %s p99 %s; flooder sent %d reports (%d accepted, %d refused)",
		len(normal), percentile(normal, .5), p99n, len(flooded), percentile(flooded, .5), p99f, res.sent, res.accepted, res.limited)
	b.ReportMetric(ms(percentile(normal, .5)), "p50-ms-normal")
	b.ReportMetric(ms(p99n), "p99-ms-normal")
	b.ReportMetric(ms(percentile(flooded, .5)), "p50-ms-flood")
	b.ReportMetric(ms(p99f), "p99-ms-flood")
	b.ReportMetric(float64(p99f)/float64(p99n), "p99-ratio")
	b.ReportMetric(float64(res.sent)/(phase+time.Second).Seconds(), "flood-reports/s")
	b.ReportMetric(0, "ns/op")
}
