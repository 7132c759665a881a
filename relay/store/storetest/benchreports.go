package storetest

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/reports"
	"github.com/deskside/deskside/relay/store"
)

// BenchReports files TicketBenchSize tickets over 30 days, each assigned
// and resolved, every third escalated and every tenth reopened, over 1,000
// devices, and measures the full report over those 30 days (store rows and
// arithmetic; issue 12's target: 2 s) as the p99 of its runs in
// milliseconds.
func BenchReports(b *testing.B, open func(testing.TB) store.Store) {
	BenchReportsN(b, open, TicketBenchSize)
}

// BenchReportsN is BenchReports over n tickets.
func BenchReportsN(b *testing.B, open func(testing.TB) store.Store, n int) {
	s := open(b)
	ctx := b.Context()
	from := time.Date(2026, time.October, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 30)
	step := to.Sub(from) / time.Duration(n)
	for i := range 1000 {
		d := store.Device{ID: fmt.Sprintf("dev-%d", i), Hostname: fmt.Sprintf("PC-%d", i), OS: "windows", FirstSeen: from, LastSeen: from,
			DeviceSummary: store.DeviceSummary{Model: fmt.Sprintf("Model %d", i%37), OSDisplay: fmt.Sprintf("Windows 11 %dH2", 21+i%4)}}
		if err := s.CreateDevice(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		created := from.Add(time.Duration(i) * step)
		tech := fmt.Sprintf("tech%d", i%20)
		t := store.Ticket{Code: benchCode(i), Subject: fmt.Sprintf("problem %d", i), Priority: 1 + i%4, Status: 4, Tier: 1 + i%3,
			Assignee: tech, DeviceID: fmt.Sprintf("dev-%d", i%1000), Category: []string{"printer", "vpn", "email", "hardware"}[i%4],
			CreatedAt: created, FirstResponseAt: created.Add(time.Duration(1+i%90) * time.Minute)}
		entries := []store.TicketEntry{
			{Time: created.Add(time.Minute), Author: tech, Kind: store.ReportKindAssignee, To: tech},
		}
		if i%3 == 0 {
			entries = append(entries, store.TicketEntry{Time: created.Add(30 * time.Minute), Author: tech, Kind: store.ReportKindTier,
				From: strconv.Itoa(1 + i%3), To: strconv.Itoa(2 + i%3)})
		}
		entries = append(entries, store.TicketEntry{Time: created.Add(time.Duration(2+i%48) * time.Hour), Author: tech,
			Kind: store.ReportKindStatus, From: "open", To: "resolved"})
		if i%10 == 0 {
			entries = append(entries, store.TicketEntry{Time: created.Add(72 * time.Hour), Kind: store.ReportKindStatus, From: "resolved", To: "open"})
		}
		t.UpdatedAt = entries[len(entries)-1].Time
		if _, err := s.CreateTicket(ctx, t, entries); err != nil {
			b.Fatal(err)
		}
	}
	var ds []time.Duration
	for b.Loop() {
		t0 := time.Now()
		r, err := reports.Build(ctx, s, from, to)
		if err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
		if r.TicketsOpened != n || len(r.Technicians) != 20 {
			b.Fatalf("report: %d tickets, %d technicians; want %d, 20", r.TicketsOpened, len(r.Technicians), n)
		}
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)*99/100])/float64(time.Millisecond), "p99-ms")
}
