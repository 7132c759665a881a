package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// benchWords are the words the benchmark's tickets are made of.
var benchWords = []string{"printer", "vpn", "outlook", "password", "laptop", "monitor", "wifi", "scanner", "teams", "disk"}

// SeedTickets files n tickets straight into s (about a third active,
// spread over tiers, priorities, 20 assignees "tech0"… and 1,000 devices,
// a few words each), as BenchTickets and the console's queue page
// benchmark (console/webtest) use them.
func SeedTickets(tb testing.TB, s store.Store, n int) {
	ctx := tb.Context()
	words := benchWords
	start := time.Unix(1_800_000_000, 0)
	for i := range n {
		t := store.Ticket{Code: benchCode(i), Subject: fmt.Sprintf("%s problem %d", words[i%len(words)], i),
			Description: fmt.Sprintf("The %s on desk %d fails since %s.", words[(i/10)%len(words)], i%500, words[(i/7)%len(words)]),
			Priority:    1 + i%4, Status: 1 + i%5, Tier: 1 + i%3, Assignee: fmt.Sprintf("tech%d", i%20),
			DeviceID: fmt.Sprintf("dev-%d", i%1000), Category: words[i%3], CreatedAt: start.Add(time.Duration(i) * time.Second)}
		t.UpdatedAt = t.CreatedAt
		if _, err := s.CreateTicket(ctx, t, nil); err != nil {
			tb.Fatal(err)
		}
	}
}

// TicketBenchSize is how many tickets BenchTickets files: issue 12's
// queue of 100,000.
const TicketBenchSize = 100_000

// benchCode is the i-th code of the benchmark's tickets.
func benchCode(i int) string {
	const alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
	b := []byte("DS-0000")
	for k := 6; k >= 3; k-- {
		b[k] = alphabet[i%32]
		i /= 32
	}
	return string(b)
}

// BenchTickets files TicketBenchSize tickets (about a third active, spread
// over tiers, priorities, assignees and 1,000 devices, a few words each),
// then measures, each as the p99 of its ops in milliseconds: a lookup by
// code (target 5 ms), a queue page (the active tickets of one tier, 50,
// with the total; target 100 ms) and a full-text search page.
func BenchTickets(b *testing.B, open func(testing.TB) store.Store) {
	s := open(b)
	ctx := b.Context()
	SeedTickets(b, s, TicketBenchSize)
	p99 := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)*99/100]) / float64(time.Millisecond)
	}
	run := func(name, metric string, op func(i int) error) {
		b.Run(name, func(b *testing.B) {
			var ds []time.Duration
			for i := 0; b.Loop(); i++ {
				t0 := time.Now()
				if err := op(i); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(t0))
			}
			b.ReportMetric(p99(ds), metric)
		})
	}
	run("lookup", "p99-ms", func(i int) error {
		_, err := s.GetTicket(ctx, benchCode((i*7919)%TicketBenchSize))
		return err
	})
	run("queue", "p99-ms", func(i int) error {
		ts, total, err := s.ListTickets(ctx, store.TicketFilter{Statuses: []int{1, 2, 3}, Tier: 1 + i%3, Limit: 50})
		if err == nil && (len(ts) != 50 || total < 10_000) {
			err = fmt.Errorf("queue page: %d of %d", len(ts), total)
		}
		return err
	})
	words := benchWords
	run("search", "p99-ms", func(i int) error {
		ts, _, err := s.ListTickets(ctx, store.TicketFilter{Search: words[i%len(words)] + " desk", Statuses: []int{1, 2, 3}, Limit: 50})
		if err == nil && len(ts) == 0 {
			err = fmt.Errorf("search found nothing")
		}
		return err
	})
}
