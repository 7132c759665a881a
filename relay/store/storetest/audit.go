package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

var auditTests = []subtest{
	{"Chain", testAuditChain},
	{"ConcurrentAppend", testAuditConcurrent},
}

// verifyAuditChain lists the whole log and checks that it is want events
// long, with Seq 1..want, each PrevHash the previous event's Hash (the
// first ""), and each Hash recomputable from what was read back.
func verifyAuditChain(t *testing.T, s store.Store, want int) []store.AuditEvent {
	t.Helper()
	events, err := s.ListAudit(t.Context(), want+10)
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
	events, err := s.ListAudit(ctx, 10)
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
		got, err := s.AppendAudit(ctx, e)
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
		got, err := s.ListAudit(ctx, limit)
		ok(t, err, "ListAudit(%d)", limit)
		same(t, fmt.Sprintf("ListAudit(%d)", limit), got, appended[:limit])
	}

	// The chain continues across further appends.
	_, err = s.AppendAudit(ctx, store.AuditEvent{Time: t0.Add(3 * time.Hour), Actor: "alice", Action: "session.end", Target: "dev-1"})
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
			got, err := s.AppendAudit(ctx, e)
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
