package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

var auditTests = []subtest{
	{"Chain", testAuditChain},
	{"ConcurrentAppend", testAuditConcurrent},
	{"Batch", testAuditBatch},
	{"BatchAllOrNothing", testAuditBatchAllOrNothing},
	{"ConcurrentBatches", testAuditConcurrentBatches},
	{"Filter", testAuditFilter},
	{"Scan", testAuditScan},
	{"Seal", testAuditSeal},
}

// verifyAuditChain lists the whole log and checks that it is want events
// long, with Seq 1..want, each PrevHash the previous event's Hash (the
// first ""), and each Hash recomputable from what was read back.
func verifyAuditChain(t *testing.T, s store.Store, want int) []store.AuditEvent {
	t.Helper()
	events, err := s.ListAudit(t.Context(), store.AuditFilter{Limit: want + 10})
	ok(t, err, "ListAudit")
	if len(events) != want {
		t.Fatalf("ListAudit returned %d events, want %d", len(events), want)
	}
	prev := ""
	for i := range events {
		e := events[len(events)-1-i] // oldest first
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has Seq %d, want %d", i, e.Seq, i+1)
		}
		if e.PrevHash != prev {
			t.Fatalf("event %d: PrevHash %q, want the previous Hash %q", e.Seq, e.PrevHash, prev)
		}
		if h := store.AuditHash(e.PrevHash, e); e.Hash != h {
			t.Fatalf("event %d: Hash %q, recomputed %q", e.Seq, e.Hash, h)
		}
		prev = e.Hash
	}
	return events
}

func testAuditChain(t *testing.T, s store.Store) {
	ctx := t.Context()
	events, err := s.ListAudit(ctx, store.AuditFilter{Limit: 10})
	ok(t, err, "ListAudit(empty)")
	if len(events) != 0 {
		t.Fatalf("ListAudit(empty) = %+v", events)
	}

	in := []store.AuditEvent{
		{Time: t0, Actor: "alice", Action: "session.start", Target: "dev-1", Detail: `{"ticket":"HX-42"}`},
		{Time: t0.Add(time.Nanosecond), Actor: "alice", Action: "command.run", Target: "dev-1", Detail: "ipconfig /all"},
		{Time: t0.Add(time.Minute).In(time.UTC), Actor: "system", Action: "device.revoke", Target: "dev-2"},
		{Time: t0.Add(time.Hour), Actor: "bob", Action: "technician.create", Target: "carol", Detail: "role=2\nline two\x00"},
		{Time: t0.Add(2 * time.Hour), Actor: "", Action: "relay.start"},
	}
	var appended []store.AuditEvent
	prev := ""
	for i, e := range in {
		// Fields the store fills are ignored on input.
		e.Seq, e.PrevHash, e.Hash = 1000, "bogus", "bogus"
		got, err := s.AppendAudit(ctx, e, store.AuditHash)
		ok(t, err, "AppendAudit(%d)", i)
		if got.Seq != int64(i+1) || got.PrevHash != prev || !got.Time.Equal(in[i].Time) ||
			got.Actor != e.Actor || got.Action != e.Action || got.Target != e.Target || got.Detail != e.Detail {
			t.Fatalf("AppendAudit(%d) = %+v, input %+v, previous hash %q", i, got, in[i], prev)
		}
		if h := store.AuditHash(prev, got); got.Hash != h {
			t.Fatalf("AppendAudit(%d).Hash = %q, recomputed %q", i, got.Hash, h)
		}
		prev = got.Hash
		appended = append([]store.AuditEvent{got}, appended...) // newest first
	}

	all := verifyAuditChain(t, s, len(in))
	same(t, "ListAudit", all, appended)
	for _, limit := range []int{1, 3, 5} {
		got, err := s.ListAudit(ctx, store.AuditFilter{Limit: limit})
		ok(t, err, "ListAudit(%d)", limit)
		same(t, fmt.Sprintf("ListAudit(%d)", limit), got, appended[:limit])
	}

	// The chain continues across further appends.
	_, err = s.AppendAudit(ctx, store.AuditEvent{Time: t0.Add(3 * time.Hour), Actor: "alice", Action: "session.end", Target: "dev-1"}, store.AuditHash)
	ok(t, err, "AppendAudit")
	verifyAuditChain(t, s, len(in)+1)
}

func testAuditConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const writers, each = 8, 25
	errs := barrier(writers, func(w int) error {
		for i := range each {
			e := store.AuditEvent{
				Time:   t0.Add(time.Duration(w*each+i) * time.Millisecond),
				Actor:  fmt.Sprintf("tech-%d", w),
				Action: "command.run",
				Target: fmt.Sprintf("dev-%d", i),
				Detail: fmt.Sprintf("writer %d event %d", w, i),
			}
			got, err := s.AppendAudit(ctx, e, store.AuditHash)
			if err != nil {
				return err
			}
			if got.Hash != store.AuditHash(got.PrevHash, got) {
				return fmt.Errorf("AppendAudit returned an event whose hash does not verify: %+v", got)
			}
		}
		return nil
	})
	for w, err := range errs {
		ok(t, err, "writer %d", w)
	}
	events := verifyAuditChain(t, s, writers*each)

	// Every event is there exactly once.
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.Detail] {
			t.Fatalf("event %q stored twice", e.Detail)
		}
		seen[e.Detail] = true
	}
}

// testAuditBatch checks AppendAudits: events chained in order, each
// sealed in turn with the previous one's hash, times normalised as
// AppendAudit does, and the chain continuing across batches and single
// appends.
func testAuditBatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	got, err := s.AppendAudits(ctx, nil, store.AuditHash)
	ok(t, err, "AppendAudits(none)")
	if len(got) != 0 {
		t.Fatalf("AppendAudits(none) = %+v", got)
	}
	verifyAuditLen(t, s, 0)

	var (
		appended []store.AuditEvent // oldest first
		sealed   []string           // the previous hash each seal call was given
	)
	seal := func(prev string, e store.AuditEvent) string {
		sealed = append(sealed, prev)
		return store.AuditHash(prev, e)
	}
	first, err := s.AppendAudit(ctx, store.AuditEvent{Time: t0, Actor: "alice", Action: "login", Target: "alice"}, seal)
	ok(t, err, "AppendAudit")
	appended = append(appended, first)
	for round, in := range [][]store.AuditEvent{
		{
			{Time: t0.Add(time.Nanosecond), Actor: "alice", Action: "command.run", Target: "dev-1", Detail: "uptime: exit 0"},
			{Time: t0.Add(time.Nanosecond), Actor: "alice", Action: "command.run", Target: "dev-2", Detail: "uptime: exit 1\x00"},
			{Time: t0.Add(time.Minute).In(time.UTC), Actor: "", Action: "command.run", Target: "dev-3"},
		},
		{
			{Time: t0.Add(time.Hour), Actor: "bob", Action: "device.revoke", Target: "dev-4", Seq: 99, PrevHash: "bogus", Hash: "bogus"},
		},
		{
			{Time: t0.Add(2 * time.Hour), Actor: "bob", Action: "command.run", Target: "dev-5"},
			{Time: t0.Add(2 * time.Hour), Actor: "bob", Action: "command.run", Target: "dev-6"},
		},
	} {
		sealed = sealed[:0]
		got, err := s.AppendAudits(ctx, in, seal)
		ok(t, err, "AppendAudits(round %d)", round)
		if len(got) != len(in) {
			t.Fatalf("AppendAudits(round %d) returned %d events for %d", round, len(got), len(in))
		}
		var prevs []string
		for i, e := range got {
			last := appended[len(appended)-1]
			if e.Seq != last.Seq+1 || e.PrevHash != last.Hash || !e.Time.Equal(in[i].Time) ||
				e.Actor != in[i].Actor || e.Action != in[i].Action || e.Target != in[i].Target || e.Detail != in[i].Detail {
				t.Fatalf("AppendAudits(round %d) event %d = %+v, input %+v, after %+v", round, i, e, in[i], last)
			}
			if h := store.AuditHash(e.PrevHash, e); e.Hash != h {
				t.Fatalf("AppendAudits(round %d) event %d: Hash %q, recomputed %q", round, i, e.Hash, h)
			}
			prevs = append(prevs, e.PrevHash)
			appended = append(appended, e)
		}
		same(t, fmt.Sprintf("round %d: seal calls (previous hashes)", round), sealed, prevs)
	}
	last, err := s.AppendAudit(ctx, store.AuditEvent{Time: t0.Add(3 * time.Hour), Actor: "bob", Action: "logout"}, store.AuditHash)
	ok(t, err, "AppendAudit after batches")
	appended = append(appended, last)

	all := verifyAuditChain(t, s, len(appended))
	slices.Reverse(all)
	same(t, "ListAudit after batches", all, appended)

	if _, err := s.AppendAudits(ctx, []store.AuditEvent{{Time: t0, Action: "x"}}, nil); err == nil {
		t.Fatal("AppendAudits without a seal succeeded")
	}
	verifyAuditLen(t, s, len(appended))
}

// testAuditBatchAllOrNothing fails a batch part way (its context is
// cancelled while its second event is being sealed): none of its events
// is stored, and the chain goes on from the last stored event.
func testAuditBatchAllOrNothing(t *testing.T, s store.Store) {
	_, err := s.AppendAudits(t.Context(), []store.AuditEvent{{Time: t0, Action: "a"}, {Time: t0, Action: "b"}}, store.AuditHash)
	ok(t, err, "AppendAudits")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	calls := 0
	seal := func(prev string, e store.AuditEvent) string {
		if calls++; calls == 2 {
			cancel()
		}
		return store.AuditHash(prev, e)
	}
	in := []store.AuditEvent{{Time: t0, Action: "c"}, {Time: t0, Action: "d"}, {Time: t0, Action: "e"}}
	if got, err := s.AppendAudits(ctx, in, seal); err == nil {
		t.Fatalf("AppendAudits with its context cancelled part way = %+v, want an error", got)
	}
	verifyAuditChain(t, s, 2)
	got, err := s.AppendAudits(t.Context(), in, store.AuditHash)
	ok(t, err, "AppendAudits after the failed batch")
	if got[0].Seq != 3 {
		t.Fatalf("after the failed batch the chain goes on at %d, want 3", got[0].Seq)
	}
	verifyAuditChain(t, s, 5)
}

// testAuditConcurrentBatches has writers append batches of 1 to 5 events
// and single events at once: the log stays one chain, each batch's
// events consecutive in it, every event once.
func testAuditConcurrentBatches(t *testing.T, s store.Store) {
	ctx := t.Context()
	const writers, rounds = 8, 10
	var total atomic.Int64
	errs := barrier(writers, func(w int) error {
		for r := range rounds {
			ev := func(i int) store.AuditEvent {
				return store.AuditEvent{Time: t0.Add(time.Duration(w*1000+r*10+i) * time.Millisecond), Actor: fmt.Sprintf("tech-%d", w),
					Action: "command.run", Target: fmt.Sprintf("dev-%d", i), Detail: fmt.Sprintf("writer %d round %d event %d", w, r, i)}
			}
			if (w+r)%3 == 0 {
				if _, err := s.AppendAudit(ctx, ev(0), store.AuditHash); err != nil {
					return err
				}
				total.Add(1)
				continue
			}
			in := make([]store.AuditEvent, 1+(w+r)%5)
			for i := range in {
				in[i] = ev(i)
			}
			got, err := s.AppendAudits(ctx, in, store.AuditHash)
			if err != nil {
				return err
			}
			for i, e := range got {
				if e.Detail != in[i].Detail || e.Hash != store.AuditHash(e.PrevHash, e) || (i > 0 && (e.Seq != got[i-1].Seq+1 || e.PrevHash != got[i-1].Hash)) {
					return fmt.Errorf("AppendAudits returned a batch that is not consecutive in the chain: event %d %+v", i, e)
				}
			}
			total.Add(int64(len(got)))
		}
		return nil
	})
	for w, err := range errs {
		ok(t, err, "writer %d", w)
	}
	events := verifyAuditChain(t, s, int(total.Load()))
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.Detail] {
			t.Fatalf("event %q stored twice", e.Detail)
		}
		seen[e.Detail] = true
	}
}

// testAuditFilter checks each filter alone and together, the action
// prefix, the time range's bounds and paging with Before.
func testAuditFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := []store.AuditEvent{
		{Time: t0, Actor: "alice", Action: "login", Target: "alice"},
		{Time: t0.Add(1 * time.Minute), Actor: "alice", Action: "desktop.start", Target: "dev-1"},
		{Time: t0.Add(2 * time.Minute), Actor: "bob", Action: "desktop.start", Target: "dev-2"},
		{Time: t0.Add(3 * time.Minute), Actor: "alice", Action: "desktop.end", Target: "dev-1"},
		{Time: t0.Add(4 * time.Minute), Actor: "bob", Action: "desktopx", Target: "dev-1"},
		{Time: t0.Add(5 * time.Minute), Actor: "bob", Action: "command.run", Target: "dev-1", Detail: "uptime"},
		{Time: t0.Add(6 * time.Minute), Actor: "alicia", Action: "desktop.refused", Target: "dev-10"},
	}
	for i, e := range in {
		_, err := s.AppendAudit(ctx, e, store.AuditHash)
		ok(t, err, "AppendAudit(%d)", i)
	}
	for _, tc := range []struct {
		name string
		f    store.AuditFilter
		want []int64 // seqs, newest first
	}{
		{"all", store.AuditFilter{}, []int64{7, 6, 5, 4, 3, 2, 1}},
		{"actor exact", store.AuditFilter{Actor: "alice"}, []int64{4, 2, 1}},
		{"device exact", store.AuditFilter{Target: "dev-1"}, []int64{6, 5, 4, 2}},
		{"action exact", store.AuditFilter{Action: "desktop.start"}, []int64{3, 2}},
		{"action prefix", store.AuditFilter{Action: "desktop.*"}, []int64{7, 4, 3, 2}},
		{"action prefix without dot", store.AuditFilter{Action: "desktop*"}, []int64{7, 5, 4, 3, 2}},
		{"action star alone", store.AuditFilter{Action: "*"}, []int64{7, 6, 5, 4, 3, 2, 1}},
		{"since inclusive", store.AuditFilter{Since: t0.Add(5 * time.Minute)}, []int64{7, 6}},
		{"until exclusive", store.AuditFilter{Until: t0.Add(2 * time.Minute)}, []int64{2, 1}},
		{"range", store.AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, []int64{3, 2}},
		{"together", store.AuditFilter{Actor: "alice", Target: "dev-1", Action: "desktop.*", Since: t0.Add(2 * time.Minute)}, []int64{4}},
		{"limit", store.AuditFilter{Target: "dev-1", Limit: 2}, []int64{6, 5}},
		{"before", store.AuditFilter{Target: "dev-1", Before: 5, Limit: 2}, []int64{4, 2}},
		{"before the first", store.AuditFilter{Before: 1}, nil},
		{"no match", store.AuditFilter{Actor: "mallory"}, nil},
		{"like characters are literal", store.AuditFilter{Action: "desktop_*"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListAudit(ctx, tc.f)
			ok(t, err, "ListAudit(%+v)", tc.f)
			var seqs []int64
			for _, e := range got {
				seqs = append(seqs, e.Seq)
			}
			same(t, fmt.Sprintf("ListAudit(%+v) seqs", tc.f), seqs, tc.want)
		})
	}
	for _, f := range []store.AuditFilter{
		{Action: "desk*top"},
		{Before: -1},
		{Since: t0, Until: t0},
	} {
		if _, err := s.ListAudit(ctx, f); err == nil {
			t.Errorf("ListAudit(%+v) accepted an invalid filter", f)
		}
	}
}

// testAuditScan checks the verifier's walk: oldest first, after a record,
// in pages.
func testAuditScan(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i := range 5 {
		_, err := s.AppendAudit(ctx, store.AuditEvent{Time: t0.Add(time.Duration(i) * time.Second), Action: fmt.Sprint(i)}, store.AuditHash)
		ok(t, err, "AppendAudit(%d)", i)
	}
	all := verifyAuditChain(t, s, 5)
	var walked []store.AuditEvent
	after := int64(0)
	for {
		page, err := s.ScanAudit(ctx, after, 2)
		ok(t, err, "ScanAudit(%d, 2)", after)
		if len(page) == 0 {
			break
		}
		walked = append(walked, page...)
		after = page[len(page)-1].Seq
	}
	for i, e := range walked {
		same(t, fmt.Sprintf("ScanAudit record %d", i), e, all[len(all)-1-i])
	}
	if len(walked) != 5 {
		t.Fatalf("ScanAudit walked %d records, want 5", len(walked))
	}
	rest, err := s.ScanAudit(ctx, 3, 0)
	ok(t, err, "ScanAudit(3, 0)")
	if len(rest) != 2 || rest[0].Seq != 4 {
		t.Fatalf("ScanAudit(3, 0) = %+v, want records 4 and 5", rest)
	}
}

// testAuditSeal checks the store hashes with the seal it is given, inside
// the append (the previous hash is the stored one), and refuses none.
func testAuditSeal(t *testing.T, s store.Store) {
	ctx := t.Context()
	var calls []string
	seal := func(prev string, e store.AuditEvent) string {
		calls = append(calls, prev)
		return fmt.Sprintf("sealed-%d", e.Seq)
	}
	e1, err := s.AppendAudit(ctx, store.AuditEvent{Time: t0, Action: "a"}, seal)
	ok(t, err, "AppendAudit")
	e2, err := s.AppendAudit(ctx, store.AuditEvent{Time: t0, Action: "b"}, seal)
	ok(t, err, "AppendAudit")
	if e1.Hash != "sealed-1" || e2.Hash != "sealed-2" || e2.PrevHash != "sealed-1" {
		t.Fatalf("AppendAudit with a seal = %+v, %+v", e1, e2)
	}
	same(t, "seal calls (previous hashes)", calls, []string{"", "sealed-1"})
	if _, err := s.AppendAudit(ctx, store.AuditEvent{Time: t0, Action: "c"}, nil); err == nil {
		t.Fatal("AppendAudit without a seal succeeded")
	}
	verifyAuditLen(t, s, 2)
}

func verifyAuditLen(t *testing.T, s store.Store, want int) {
	t.Helper()
	got, err := s.ListAudit(t.Context(), store.AuditFilter{})
	ok(t, err, "ListAudit")
	if len(got) != want {
		t.Fatalf("ListAudit: %d records, want %d", len(got), want)
	}
}
