package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// Ticket statuses and priorities as stored (desksidev1 enum values).
const (
	stNew, stOpen, stPending, stResolved, stClosed = 1, 2, 3, 4, 5
	prLow, prNormal, prHigh, prUrgent              = 1, 2, 3, 4
)

var ticketTests = []subtest{
	{"RoundTrip", testTicketRoundTrip},
	{"Update", testTicketUpdate},
	{"Queues", testTicketQueues},
	{"Search", testTicketSearch},
	{"DeviceHostnames", testTicketDeviceHostnames},
}

func fullTicket(code string) store.Ticket {
	return store.Ticket{
		Code: code, RequesterName: "Ada Lovelace", RequesterEmail: "ada@example.com", DeviceID: "dev-1",
		Subject: "Printer jams", Description: "The printer on floor 2 jams on every page.", Category: "Hardware",
		Priority: prHigh, Status: stNew, Tier: 1, Assignee: "", CreatedBy: "tech1",
		CreatedAt: t0, UpdatedAt: t0, Snapshot: []byte("snapshot"),
	}
}

func testTicketRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.GetTicket(ctx, "DS-NONE")
	wantErr(t, err, store.ErrNotFound, "GetTicket(unknown)")

	in := fullTicket("DS-AB2C")
	got, err := s.CreateTicket(ctx, in, []store.TicketEntry{{Time: t0, Author: "tech1", Kind: 1}})
	ok(t, err, "CreateTicket")
	if got.ID == 0 || got.Version != 1 || !got.HasSnapshot {
		t.Fatalf("created ticket: id %d, version %d, has snapshot %v", got.ID, got.Version, got.HasSnapshot)
	}
	want := in
	want.ID, want.Version, want.HasSnapshot = got.ID, 1, true
	same(t, "created ticket", got, want)
	read, err := s.GetTicket(ctx, "DS-AB2C")
	ok(t, err, "GetTicket")
	same(t, "read ticket", read, want)

	_, err = s.CreateTicket(ctx, fullTicket("DS-AB2C"), nil)
	wantErr(t, err, store.ErrExists, "CreateTicket(code taken)")

	bare := store.Ticket{Code: "DS-XY3Z", Subject: "s", Priority: prNormal, Status: stNew, Tier: 1, CreatedAt: t0, UpdatedAt: t0}
	got, err = s.CreateTicket(ctx, bare, nil)
	ok(t, err, "CreateTicket(bare)")
	if got.HasSnapshot || len(got.Snapshot) != 0 {
		t.Errorf("ticket without a snapshot: has %v, %q", got.HasSnapshot, got.Snapshot)
	}
	list, _, err := s.ListTickets(ctx, store.TicketFilter{})
	ok(t, err, "ListTickets")
	for _, l := range list {
		if l.Snapshot != nil {
			t.Errorf("ListTickets returned the snapshot of %s", l.Code)
		}
		if l.Code == "DS-AB2C" && !l.HasSnapshot {
			t.Errorf("ListTickets: %s has no snapshot", l.Code)
		}
	}
	es, err := s.TicketEntries(ctx, read.ID)
	ok(t, err, "TicketEntries")
	if len(es) != 1 || es[0].Kind != 1 || es[0].TicketID != read.ID || !es[0].Time.Equal(t0) {
		t.Errorf("entries of a new ticket: %+v", es)
	}
}

func testTicketUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	tk, err := s.CreateTicket(ctx, fullTicket("DS-AB2C"), nil)
	ok(t, err, "CreateTicket")

	next := tk
	next.Subject, next.Description = "changed", "changed" // not updated
	next.Status, next.Tier, next.Assignee, next.Priority, next.Category = stOpen, 2, "tech2", prUrgent, "Network"
	next.UpdatedAt, next.FirstResponseAt = t0.Add(time.Minute), t0.Add(time.Minute)
	entries := []store.TicketEntry{
		{Time: t0.Add(time.Minute), Author: "tech2", Kind: 5, From: "1", To: "2", Body: "needs a network engineer"},
		{Time: t0.Add(time.Minute), Author: "tech2", Kind: 9, LinkKind: "command", LinkSeq: 42, LinkAction: "command.run", LinkTarget: "dev-1"},
	}
	got, err := s.UpdateTicket(ctx, next, entries)
	ok(t, err, "UpdateTicket")
	want := next
	want.Subject, want.Description, want.Version = tk.Subject, tk.Description, 2
	same(t, "updated ticket", got, want)

	stale := next // still version 1
	stale.Status = stClosed
	_, err = s.UpdateTicket(ctx, stale, nil)
	wantErr(t, err, store.ErrConflict, "UpdateTicket(stale version)")
	gone := got
	gone.ID = got.ID + 1000
	_, err = s.UpdateTicket(ctx, gone, nil)
	wantErr(t, err, store.ErrNotFound, "UpdateTicket(unknown)")

	es, err := s.TicketEntries(ctx, tk.ID)
	ok(t, err, "TicketEntries")
	if len(es) != 2 {
		t.Fatalf("got %d entries, want 2", len(es))
	}
	for i := range es {
		e := es[i]
		entries[i].ID, entries[i].TicketID = e.ID, tk.ID
	}
	same(t, "entries", es, entries)
	if es[0].ID >= es[1].ID {
		t.Errorf("entries out of order: %d, %d", es[0].ID, es[1].ID)
	}
	// The reason of the change is searchable.
	found, n, err := s.ListTickets(ctx, store.TicketFilter{Search: "engineer"})
	ok(t, err, "ListTickets(search an entry)")
	if n != 1 || len(found) != 1 || found[0].Code != "DS-AB2C" {
		t.Errorf("search in an entry's body: %d, %v", n, codes(found))
	}
}

func codes(ts []store.Ticket) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Code
	}
	return out
}

func testTicketQueues(t *testing.T, s store.Store) {
	ctx := t.Context()
	mk := func(code string, prio, status, tier int, assignee, category, device string, age time.Duration) {
		t.Helper()
		tk := store.Ticket{Code: code, Subject: "subject " + code, Priority: prio, Status: status, Tier: tier,
			Assignee: assignee, Category: category, DeviceID: device, CreatedAt: t0.Add(-age), UpdatedAt: t0}
		_, err := s.CreateTicket(ctx, tk, nil)
		ok(t, err, "CreateTicket %s", code)
	}
	mk("DS-AAAA", prNormal, stNew, 1, "", "hardware", "dev-1", 3*time.Hour)
	mk("DS-BBBB", prUrgent, stOpen, 1, "tech1", "Hardware", "dev-2", time.Hour)
	mk("DS-CCCC", prNormal, stNew, 2, "", "network", "dev-1", 5*time.Hour)
	mk("DS-DDDD", prUrgent, stPending, 2, "tech2", "", "", 2*time.Hour)
	mk("DS-EEEE", prLow, stClosed, 1, "tech1", "hardware", "dev-1", 9*time.Hour)
	mk("DS-FFFF", prNormal, stResolved, 3, "", "", "", 4*time.Hour)

	active := []int{stNew, stOpen, stPending}
	for _, c := range []struct {
		name string
		f    store.TicketFilter
		want []string
	}{
		{"all, most urgent then oldest", store.TicketFilter{}, []string{"DS-DDDD", "DS-BBBB", "DS-CCCC", "DS-FFFF", "DS-AAAA", "DS-EEEE"}},
		{"active", store.TicketFilter{Statuses: active}, []string{"DS-DDDD", "DS-BBBB", "DS-CCCC", "DS-AAAA"}},
		{"tier 1 active", store.TicketFilter{Statuses: active, Tier: 1}, []string{"DS-BBBB", "DS-AAAA"}},
		{"mine", store.TicketFilter{Assignee: "tech1"}, []string{"DS-BBBB", "DS-EEEE"}},
		{"unassigned", store.TicketFilter{Unassigned: true}, []string{"DS-CCCC", "DS-FFFF", "DS-AAAA"}},
		{"priority", store.TicketFilter{Priorities: []int{prUrgent, prLow}}, []string{"DS-DDDD", "DS-BBBB", "DS-EEEE"}},
		{"category, any case", store.TicketFilter{Category: "HARDWARE"}, []string{"DS-BBBB", "DS-AAAA", "DS-EEEE"}},
		{"device", store.TicketFilter{DeviceID: "dev-1"}, []string{"DS-CCCC", "DS-AAAA", "DS-EEEE"}},
		{"page", store.TicketFilter{Limit: 2, Offset: 1}, []string{"DS-BBBB", "DS-CCCC"}},
	} {
		got, total, err := s.ListTickets(ctx, c.f)
		ok(t, err, "ListTickets %s", c.name)
		if !slices.Equal(codes(got), c.want) {
			t.Errorf("%s: got %v, want %v", c.name, codes(got), c.want)
		}
		wantTotal := len(c.want)
		if c.f.Limit > 0 {
			wantTotal = 6
		}
		if total != int64(wantTotal) {
			t.Errorf("%s: total %d, want %d", c.name, total, wantTotal)
		}
	}
	// A count limit stops the count, not the page.
	for _, c := range []struct {
		f        store.TicketFilter
		n, total int
	}{
		{store.TicketFilter{CountLimit: 4, Limit: 2}, 2, 4},
		{store.TicketFilter{CountLimit: 2, Limit: 3}, 3, 2},
		{store.TicketFilter{CountLimit: 7}, 6, 6},
		{store.TicketFilter{Statuses: active, CountLimit: 1, Limit: 1, Offset: 1}, 1, 1},
		{store.TicketFilter{Search: "subject", CountLimit: 5, Limit: 1}, 1, 5},
	} {
		got, total, err := s.ListTickets(ctx, c.f)
		ok(t, err, "ListTickets %+v", c.f)
		if len(got) != c.n || total != int64(c.total) {
			t.Errorf("ListTickets %+v: %d tickets, total %d; want %d, %d", c.f, len(got), total, c.n, c.total)
		}
	}
	if _, _, err := s.ListTickets(ctx, store.TicketFilter{Offset: -1}); err == nil {
		t.Error("ListTickets with a negative offset succeeded")
	}

	// A technician's device scope: dev-1 is in "lab", dev-2 in
	// "front-desk"; tickets about no device are everyone's.
	for id, g := range map[string]string{"dev-1": "lab", "dev-2": "front-desk"} {
		d := fullDevice(id)
		ok(t, s.CreateDevice(ctx, d), "CreateDevice %s", id)
		ok(t, s.SetDeviceGroup(ctx, id, g), "SetDeviceGroup %s", id)
	}
	for _, c := range []struct {
		name   string
		groups []string
		want   []string
	}{
		{"scope front-desk", []string{"front-desk"}, []string{"DS-DDDD", "DS-BBBB", "DS-FFFF"}},
		{"scope lab", []string{"lab"}, []string{"DS-DDDD", "DS-CCCC", "DS-FFFF", "DS-AAAA", "DS-EEEE"}},
		{"scope both", []string{"lab", "front-desk"}, []string{"DS-DDDD", "DS-BBBB", "DS-CCCC", "DS-FFFF", "DS-AAAA", "DS-EEEE"}},
		{"scope elsewhere", []string{"warehouse"}, []string{"DS-DDDD", "DS-FFFF"}},
	} {
		got, total, err := s.ListTickets(ctx, store.TicketFilter{Groups: c.groups})
		ok(t, err, "ListTickets %s", c.name)
		if !slices.Equal(codes(got), c.want) || total != int64(len(c.want)) {
			t.Errorf("%s: got %v (total %d), want %v", c.name, codes(got), total, c.want)
		}
	}
}

func testTicketSearch(t *testing.T, s store.Store) {
	ctx := t.Context()
	add := func(code, subject, description string, age time.Duration, replies ...string) {
		t.Helper()
		tk, err := s.CreateTicket(ctx, store.Ticket{Code: code, Subject: subject, Description: description,
			Priority: prNormal, Status: stNew, Tier: 1, CreatedAt: t0.Add(-age), UpdatedAt: t0}, nil)
		ok(t, err, "CreateTicket %s", code)
		for _, r := range replies {
			tk, err = s.UpdateTicket(ctx, tk, []store.TicketEntry{{Time: t0, Author: "tech", Kind: 2, Body: r}})
			ok(t, err, "reply to %s", code)
		}
	}
	// The word "printer" is in one subject, in two descriptions (one many
	// times) and in a reply.
	add("DS-AAAA", "Laptop slow", "printer printer printer printer, the printer driver again", time.Hour)
	add("DS-BBBB", "Printer offline", "since Monday", 5*time.Hour)
	add("DS-CCCC", "VPN drops", "every hour", 2*time.Hour, "Reinstalled the printer driver; VPN is fine now.")
	add("DS-DDDD", "Café Wi-Fi", "the guest network asks for a password", 3*time.Hour)
	add("DS-EEEE", "Outlook", "mail stuck in the outbox; printing works", 4*time.Hour)

	for _, c := range []struct {
		search string
		want   []string
	}{
		{"printer", []string{"DS-BBBB", "DS-AAAA", "DS-CCCC"}}, // subject first, then relevance
		{"PRINTER driver", []string{"DS-AAAA", "DS-CCCC"}},     // every word, any case
		{"print", []string{"DS-BBBB", "DS-AAAA", "DS-CCCC", "DS-EEEE"}},
		{"reinstalled", []string{"DS-CCCC"}},
		{"café", []string{"DS-DDDD"}},
		{"wi fi", []string{"DS-DDDD"}},
		{"nothing-like-this", nil},
		{`"printer" OR * NEAR( -- ; DROP TABLE tickets`, nil}, // syntax is words, all needed
		{`printer"*`, []string{"DS-BBBB", "DS-AAAA", "DS-CCCC"}},
	} {
		got, total, err := s.ListTickets(ctx, store.TicketFilter{Search: c.search})
		ok(t, err, "ListTickets(search %q)", c.search)
		if c.search == "printer" {
			// Relevance after the subject match may order the other two
			// either way; the subject match must come first.
			if len(got) != 3 || got[0].Code != "DS-BBBB" {
				t.Errorf("search %q: got %v, want DS-BBBB first of 3", c.search, codes(got))
			}
			continue
		}
		if c.search == "print" || c.search == `printer"*` {
			if len(got) == 0 || got[0].Code != "DS-BBBB" || len(got) != len(c.want) {
				t.Errorf("search %q: got %v, want %d with DS-BBBB first", c.search, codes(got), len(c.want))
			}
			continue
		}
		if !slices.Equal(codes(got), c.want) || total != int64(len(c.want)) {
			t.Errorf("search %q: got %v (total %d), want %v", c.search, codes(got), total, c.want)
		}
	}
	// Search combines with filters.
	got, _, err := s.ListTickets(ctx, store.TicketFilter{Search: "printer", Statuses: []int{stOpen}})
	ok(t, err, "ListTickets(search and status)")
	if len(got) != 0 {
		t.Errorf("search with a status no ticket has: %v", codes(got))
	}
	if terms := store.SearchTerms(fmt.Sprint(make([]int, 40))); len(terms) != 16 {
		t.Errorf("SearchTerms kept %d terms, want 16", len(terms))
	}
}

// testTicketDeviceHostnames: a listed ticket carries its device's hostname
// and group, looked up with the page; none for an unknown device or none.
func testTicketDeviceHostnames(t *testing.T, s store.Store) {
	ctx := t.Context()
	ok(t, s.CreateDevice(ctx, store.Device{ID: "dev-1", Hostname: "ws-ada", FirstSeen: t0, LastSeen: t0}), "CreateDevice")
	ok(t, s.SetDeviceGroup(ctx, "dev-1", "lab"), "SetDeviceGroup")
	ok(t, s.CreateDevice(ctx, store.Device{ID: "dev-2", Hostname: "ws-bob", FirstSeen: t0, LastSeen: t0}), "CreateDevice")
	for i, dev := range []string{"dev-1", "dev-2", "dev-gone", "", "dev-1"} {
		tk := store.Ticket{Code: fmt.Sprintf("DS-HST%d", i+2), Subject: "subject", Priority: prNormal, Status: stNew, Tier: 1,
			DeviceID: dev, CreatedAt: t0.Add(time.Duration(i) * time.Minute), UpdatedAt: t0}
		_, err := s.CreateTicket(ctx, tk, nil)
		ok(t, err, "CreateTicket %s", tk.Code)
	}
	got, _, err := s.ListTickets(ctx, store.TicketFilter{})
	ok(t, err, "ListTickets")
	var hosts []string
	for _, tk := range got {
		hosts = append(hosts, tk.DeviceID+"="+tk.DeviceHostname+"/"+tk.DeviceGroup)
	}
	want := []string{"dev-1=ws-ada/lab", "dev-2=ws-bob/", "dev-gone=/", "=/", "dev-1=ws-ada/lab"}
	if !slices.Equal(hosts, want) {
		t.Errorf("devices of the listed tickets: got %v, want %v", hosts, want)
	}
	one, err := s.GetTicket(ctx, "DS-HST2")
	ok(t, err, "GetTicket")
	if one.DeviceHostname != "" {
		t.Errorf("GetTicket set DeviceHostname %q; only ListTickets does", one.DeviceHostname)
	}
}
