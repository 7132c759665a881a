package server_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/helprequests"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
)

// BenchmarkGetHelpToQueue measures "Get help submitted → ticket in the
// queue": a real agent files a help request (a 1 MiB screenshot and a
// triage report) and a technician's WatchTickets on the same relay
// (SQLite) sees it created. Target ≤ 2 s.
func BenchmarkGetHelpToQueue(b *testing.B) {
	r := servertest.Start(b, servertest.Options{Modify: func(c *server.Config) {
		c.HelpRates = helprequests.Rates{Files: 1 << 20, FileWindow: time.Minute, Calls: 1 << 20}
	}})
	agent, _, _ := helpAgent(b, r, "bench-host")
	_, tctx := r.Admin(b)
	tc := desksidev1.NewTicketServiceClient(r.Dial(b))
	wctx, stop := context.WithCancel(tctx)
	defer stop()
	watch, err := tc.WatchTickets(wctx, &desksidev1.WatchTicketsRequest{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		b.Fatal(err)
	}
	seen := make(chan string, 16)
	go func() {
		for {
			ev, err := watch.Recv()
			if err != nil {
				return
			}
			if ev.GetKind() == desksidev1.TicketEventKind_TICKET_EVENT_KIND_CREATED {
				seen <- ev.GetTicket().GetCode()
			}
		}
	}()
	img := image.NewRGBA(image.Rect(0, 0, 512, 512))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.Uint32())
	}
	var shot bytes.Buffer
	if err := png.Encode(&shot, img); err != nil {
		b.Fatal(err)
	}
	triage := &desksidev1.CheckReport{Overall: desksidev1.CheckStatus_CHECK_STATUS_WARN}
	for _, n := range []string{"network.dns", "network.https", "disk.space", "memory", "cpu.load", "updates", "time.sync"} {
		triage.Results = append(triage.Results, &desksidev1.CheckResult{Name: n, Status: desksidev1.CheckStatus_CHECK_STATUS_PASS, Summary: "fine"})
	}
	const runs = 100
	lat := make([]time.Duration, 0, runs)
	ctx := context.Background()
	b.ResetTimer()
	for range runs {
		start := time.Now()
		f, err := agent.Link.FileHelpRequest(ctx, &desksidev1.FileHelpRequest{
			User: &desksidev1.HelpUser{Login: "alice", Name: "Alice"}, Category: "printing",
			Description: "The printer says offline since this morning.", ScreenshotPng: shot.Bytes(), Triage: triage,
		})
		if err != nil {
			b.Fatal(err)
		}
		for code := ""; code != f.GetCode(); {
			select {
			case code = <-seen:
			case <-time.After(30 * time.Second):
				b.Fatalf("%s not seen in the queue", f.GetCode())
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(shot.Len())/(1<<20), "screenshot-MiB")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
