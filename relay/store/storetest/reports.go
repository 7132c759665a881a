package storetest

import (
	"testing"
	"time"

	"github.com/deskside/deskside/relay/reports"
	"github.com/deskside/deskside/relay/store"
)

var reportTests = []subtest{
	{"KnownAnswers", testReportKnownAnswers},
	{"Empty", testReportEmpty},
}

// ReportFrom and ReportTo are the period of SeedReport's known answers:
// three UTC days.
var (
	ReportFrom = time.Date(2026, time.November, 2, 0, 0, 0, 0, time.UTC)
	ReportTo   = ReportFrom.AddDate(0, 0, 3)
)

// SeedReport files the report data set whose answers WantReport holds
// (worked out by hand in the comments), relative to ReportFrom.
func SeedReport(t testing.TB, s store.Store) {
	t.Helper()
	ctx := t.Context()
	h := func(x float64) time.Time { return ReportFrom.Add(time.Duration(x * float64(time.Hour))) }
	m := func(x float64, min int) time.Time { return h(x).Add(time.Duration(min) * time.Minute) }
	for _, d := range []store.Device{
		{ID: "dev-a", Hostname: "PC-A", OS: "windows", DeviceSummary: store.DeviceSummary{Model: "ThinkPad T14", OSDisplay: "Windows 11"}},
		{ID: "dev-b", Hostname: "PC-B", OS: "windows", DeviceSummary: store.DeviceSummary{Model: "ThinkPad T14", OSDisplay: "Windows 10"}},
		{ID: "dev-c", Hostname: "PC-C", OS: "windows", DeviceSummary: store.DeviceSummary{Model: "Latitude 5440", OSDisplay: "Windows 11"}},
	} {
		d.FirstSeen, d.LastSeen = ReportFrom, ReportFrom
		if err := s.CreateDevice(ctx, d); err != nil {
			t.Fatalf("CreateDevice %s: %v", d.ID, err)
		}
	}
	st := func(at time.Time, by, from, to string) store.TicketEntry {
		return store.TicketEntry{Time: at, Author: by, Kind: store.ReportKindStatus, From: from, To: to}
	}
	tier := func(at time.Time, by, from, to string) store.TicketEntry {
		return store.TicketEntry{Time: at, Author: by, Kind: store.ReportKindTier, From: from, To: to, Body: "needs more rights"}
	}
	assign := func(at time.Time, by, to string) store.TicketEntry {
		return store.TicketEntry{Time: at, Author: by, Kind: store.ReportKindAssignee, To: to}
	}
	reply := func(at time.Time, by string) store.TicketEntry {
		return store.TicketEntry{Time: at, Author: by, Kind: 2, Body: "on it"}
	}
	type seed struct {
		t       store.Ticket
		entries []store.TicketEntry
	}
	seeds := []seed{
		// A: opened day 1 at 01:00, first response 10 min, alice assigned
		// at 01:05, resolves at 03:00 (resolution 2 h, handling 1 h 55 min).
		{store.Ticket{Code: "DS-AAAA", Category: "printer", Priority: 3, Tier: 1, DeviceID: "dev-a", CreatedAt: h(1), FirstResponseAt: m(1, 10)},
			[]store.TicketEntry{assign(m(1, 5), "alice", "alice"), reply(m(1, 10), "alice"), st(h(3), "alice", "new", "resolved")}},
		// B: opened day 1 at 02:00, first response 30 min; bob escalates it
		// to tier 2 at 03:00, carol takes it; carol resolves at 26:00
		// (resolution 24 h, handling 23 h), the user reopens at 30:00
		// (within 14 days), carol resolves again at 32:00 (handling 2 h
		// from the reopen).
		{store.Ticket{Code: "DS-BBBB", Category: "printer", Priority: 2, Tier: 2, DeviceID: "dev-b", CreatedAt: h(2), FirstResponseAt: m(2, 30)},
			[]store.TicketEntry{assign(h(2), "bob", "bob"), reply(m(2, 30), "bob"), tier(h(3), "bob", "1", "2"), assign(h(3), "bob", "carol"),
				st(h(26), "carol", "open", "resolved"), st(h(30), "", "resolved", "open"), st(h(32), "carol", "open", "resolved")}},
		// C: opened day 2 at 01:00, first response 20 min, alice resolves
		// at 29:00 (4 h); reopened 15 days later: not within 14 days.
		{store.Ticket{Code: "DS-CCCC", Category: "vpn", Priority: 3, Tier: 1, DeviceID: "dev-c", CreatedAt: h(25), FirstResponseAt: m(25, 20)},
			[]store.TicketEntry{assign(h(25), "alice", "alice"), reply(m(25, 20), "alice"), st(h(29), "alice", "open", "resolved"),
				st(h(29+15*24), "", "resolved", "open")}},
		// D: opened day 3 at 01:00 at tier 2, no response; carol escalates
		// to tier 3 at 02:00.
		{store.Ticket{Code: "DS-DDDD", Category: "vpn", Priority: 2, Tier: 3, DeviceID: "dev-a", CreatedAt: h(49)},
			[]store.TicketEntry{tier(h(50), "carol", "2", "3")}},
		// E: opened the day before the period; alice, assigned a day before
		// (at -23:00), resolves at 05:00 (handling 28 h); reopened at 06:00.
		{store.Ticket{Code: "DS-EEEE", Category: "printer", Priority: 1, Tier: 1, DeviceID: "dev-b", CreatedAt: h(-24), FirstResponseAt: h(-23)},
			[]store.TicketEntry{assign(h(-23), "alice", "alice"), st(h(5), "alice", "open", "resolved"), st(h(6), "", "resolved", "open")}},
		// F: opened after the period: not in it.
		{store.Ticket{Code: "DS-FFFF", Category: "vpn", Priority: 4, Tier: 1, DeviceID: "dev-a", CreatedAt: h(80)},
			[]store.TicketEntry{st(h(81), "bob", "new", "resolved")}},
		// G: opened and resolved before the period: not in it.
		{store.Ticket{Code: "DS-GGGG", Category: "vpn", Priority: 4, Tier: 1, CreatedAt: h(-48)},
			[]store.TicketEntry{st(h(-40), "bob", "new", "resolved")}},
	}
	for _, sd := range seeds {
		tk := sd.t
		tk.Subject, tk.Status, tk.UpdatedAt = "report seed "+tk.Code, 2, tk.CreatedAt
		for _, e := range sd.entries {
			if e.Time.After(tk.UpdatedAt) {
				tk.UpdatedAt = e.Time
			}
		}
		if _, err := s.CreateTicket(ctx, tk, sd.entries); err != nil {
			t.Fatalf("CreateTicket %s: %v", tk.Code, err)
		}
	}
	// Article 1 helped A and B, article 2 B (linked by a lower-case code),
	// D (not resolved) and G (outside the period).
	a1, err := s.CreateArticle(ctx, store.Article{Slug: "printer-queue", Title: "Printer queue stuck", Body: "x", Author: "alice", UpdatedBy: "alice", Created: h(-100), Updated: h(-100)})
	if err != nil {
		t.Fatalf("CreateArticle: %v", err)
	}
	a2, err := s.CreateArticle(ctx, store.Article{Slug: "reset-vpn", Title: "Reset VPN", Body: "x", Author: "alice", UpdatedBy: "alice", Created: h(-100), Updated: h(-100)})
	if err != nil {
		t.Fatalf("CreateArticle: %v", err)
	}
	for _, l := range []struct {
		id   int64
		code string
	}{{a1.ID, "DS-AAAA"}, {a1.ID, "DS-BBBB"}, {a2.ID, "ds-bbbb"}, {a2.ID, "DS-DDDD"}, {a2.ID, "DS-GGGG"}} {
		if _, err := s.LinkArticle(ctx, l.id, l.code, "alice", h(10)); err != nil {
			t.Fatalf("LinkArticle: %v", err)
		}
	}
}

// WantReport is SeedReport's report over [ReportFrom, ReportTo), worked
// out by hand from the definitions in package reports (article ids are
// the store's: 1 and 2 in a fresh store).
func WantReport() reports.Report {
	day := func(i, opened, resolved int) reports.Day {
		return reports.Day{Date: ReportFrom.AddDate(0, 0, i), Opened: opened, Resolved: resolved}
	}
	stat := func(n int, median, p90 time.Duration) reports.Stat {
		return reports.Stat{N: n, Median: median, P90: p90}
	}
	count := func(name string, n int) reports.Count { return reports.Count{Name: name, Tickets: n} }
	hr, mn := time.Hour, time.Minute
	return reports.Report{
		From: ReportFrom, To: ReportTo,
		// Opened: A, B | C | D. Resolved: A 03:00, E 05:00 | B 26:00, C 29:00, B 32:00 | none.
		Days:          []reports.Day{day(0, 2, 2), day(1, 1, 3), day(2, 1, 0)},
		TicketsOpened: 4, Resolutions: 5,
		// printer: opened A, B; resolved A, B twice, E. vpn: opened C, D; resolved C.
		Categories: []reports.Category{{Name: "printer", Opened: 2, Resolved: 4}, {Name: "vpn", Opened: 2, Resolved: 1}},
		// First response A 10m, B 30m, C 20m; resolution A 2h, B 24h, C 4h.
		Overall: reports.Times{FirstResponse: stat(3, 20*mn, 30*mn), Resolution: stat(3, 4*hr, 24*hr)},
		ByPriority: []reports.PriorityTimes{
			{Priority: 3, Times: reports.Times{FirstResponse: stat(2, 10*mn, 20*mn), Resolution: stat(2, 2*hr, 4*hr)}},   // A, C
			{Priority: 2, Times: reports.Times{FirstResponse: stat(1, 30*mn, 30*mn), Resolution: stat(1, 24*hr, 24*hr)}}, // B (D has neither)
		},
		Technicians: []reports.Technician{
			// A 1h55m, C 4h, E 28h; E reopened within 14 days, C not.
			{Name: "alice", Resolved: 3, MedianHandling: 4 * hr, Reopened: 1, ReopenRate: 1.0 / 3},
			{Name: "bob", Escalations: 1},
			// B 23h then 2h; the first came back.
			{Name: "carol", Resolved: 2, MedianHandling: 2 * hr, Reopened: 1, ReopenRate: 0.5, Escalations: 1},
		},
		// Tier 1: A, B, C, B escalated. Tier 2: B, D, D escalated. Tier 3: D.
		Tiers: []reports.TierRate{{Tier: 1, Tickets: 3, Escalated: 1, Rate: 1.0 / 3}, {Tier: 2, Tickets: 2, Escalated: 1, Rate: 0.5}, {Tier: 3, Tickets: 1}},
		// A, B, D (dev-a, dev-b, dev-a) and C (dev-c).
		DeviceModels: []reports.Count{count("ThinkPad T14", 3), count("Latitude 5440", 1)},
		OSVersions:   []reports.Count{count("Windows 11", 3), count("Windows 10", 1)},
		// Resolved in the period: A, B, C, E.
		Articles: []reports.ArticleCount{{ID: 1, Title: "Printer queue stuck", Tickets: 2}, {ID: 2, Title: "Reset VPN", Tickets: 1}},
	}
}

func testReportKnownAnswers(t *testing.T, s store.Store) {
	SeedReport(t, s)
	rows, err := s.ReportTickets(t.Context(), ReportFrom, ReportTo)
	ok(t, err, "ReportTickets")
	var codes []string
	for _, r := range rows {
		codes = append(codes, r.Code)
	}
	if want := []string{"DS-AAAA", "DS-BBBB", "DS-CCCC", "DS-DDDD", "DS-EEEE"}; !equalStrings(codes, want) {
		t.Fatalf("ReportTickets codes = %v, want %v", codes, want)
	}
	if b := rows[1]; len(b.Events) != 6 || len(b.Articles) != 2 || b.DeviceModel != "ThinkPad T14" || b.DeviceOS != "Windows 10" {
		t.Errorf("DS-BBBB row = %+v; want 6 events (no reply), 2 articles, ThinkPad T14 / Windows 10", b)
	}
	got, err := reports.Build(t.Context(), s, ReportFrom, ReportTo)
	ok(t, err, "reports.Build")
	CheckReport(t, got, WantReport())
}

// CheckReport fails t for every section of got that differs from want.
func CheckReport(t testing.TB, got, want reports.Report) {
	t.Helper()
	for _, sec := range reports.Sections {
		g, err1 := reports.CSV(got, sec)
		w, err2 := reports.CSV(want, sec)
		if err1 != nil || err2 != nil {
			t.Fatalf("CSV %s: %v, %v", sec, err1, err2)
		}
		if string(g) != string(w) {
			t.Errorf("section %s:\n got %s\nwant %s", sec, g, w)
		}
	}
	if got.TicketsOpened != want.TicketsOpened || got.Resolutions != want.Resolutions {
		t.Errorf("opened %d, resolutions %d; want %d, %d", got.TicketsOpened, got.Resolutions, want.TicketsOpened, want.Resolutions)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testReportEmpty(t *testing.T, s store.Store) {
	got, err := reports.Build(t.Context(), s, ReportFrom, ReportTo)
	ok(t, err, "reports.Build")
	if got.TicketsOpened != 0 || len(got.Days) != 3 || len(got.Technicians) != 0 {
		t.Errorf("empty store: %+v; want 3 empty days", got)
	}
	if _, err := reports.Build(t.Context(), s, ReportTo, ReportFrom); err == nil {
		t.Error("reversed period accepted")
	}
}
