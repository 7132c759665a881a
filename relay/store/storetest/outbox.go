package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

var outboxTests = []subtest{
	{"AddAndList", testOutboxAddList},
	{"ClaimLease", testOutboxClaim},
	{"ClaimConcurrent", testOutboxClaimConcurrent},
	{"Prune", testOutboxPrune},
	{"StatusAndRetry", testOutboxRetry},
}

func outboxItem(kind, target string, at time.Time) store.OutboxItem {
	return store.OutboxItem{Kind: kind, Target: target, Ticket: "DS-7K3Q", Event: "ticket.create",
		Payload: []byte(`{"x":1}`), NextAt: at, CreatedAt: at, UpdatedAt: at}
}

func testOutboxAddList(t *testing.T, s store.Store) {
	ctx := t.Context()
	got, err := s.AddOutbox(ctx, []store.OutboxItem{
		outboxItem(store.OutboxMail, "sam@example.com", t0),
		outboxItem(store.OutboxWebhook, "wh-1", t0.Add(time.Second)),
		outboxItem(store.OutboxMail, "bob@example.com", t0.Add(2*time.Second)),
	})
	ok(t, err, "AddOutbox")
	if len(got) != 3 || got[0].ID == 0 || got[0].ID == got[1].ID || got[1].ID == got[2].ID {
		t.Fatalf("AddOutbox ids: %+v", got)
	}
	want := outboxItem(store.OutboxMail, "sam@example.com", t0)
	want.ID, want.Status = got[0].ID, store.OutboxPending
	all, err := s.ListOutbox(ctx, "", 0)
	ok(t, err, "ListOutbox")
	if len(all) != 3 || all[0].Target != "bob@example.com" || all[2].Target != "sam@example.com" {
		t.Fatalf("ListOutbox is not newest first: %+v", all)
	}
	same(t, "stored item", all[2], want)
	mails, err := s.ListOutbox(ctx, store.OutboxMail, 1)
	ok(t, err, "ListOutbox(mail, 1)")
	if len(mails) != 1 || mails[0].Target != "bob@example.com" {
		t.Fatalf("ListOutbox(mail, 1): %+v", mails)
	}
	hooks, err := s.ListOutbox(ctx, store.OutboxWebhook, 0)
	ok(t, err, "ListOutbox(webhook)")
	if len(hooks) != 1 || hooks[0].Target != "wh-1" {
		t.Fatalf("ListOutbox(webhook): %+v", hooks)
	}
}

// Claims take due, unleased items oldest first; a lease keeps others
// off until it runs out; a stale owner cannot finish; finished items
// are not claimed again, retries come back when due.
func testOutboxClaim(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.AddOutbox(ctx, []store.OutboxItem{
		outboxItem(store.OutboxMail, "later@example.com", t0.Add(time.Hour)),
		outboxItem(store.OutboxMail, "second@example.com", t0.Add(time.Second)),
		outboxItem(store.OutboxMail, "first@example.com", t0),
	})
	ok(t, err, "AddOutbox")
	now := t0.Add(time.Minute)
	a, err := s.ClaimOutbox(ctx, "relay-a", now, time.Minute, 1)
	ok(t, err, "ClaimOutbox(a)")
	if len(a) != 1 || a[0].Target != "first@example.com" || a[0].LeaseOwner != "relay-a" || !a[0].LeaseUntil.Equal(now.Add(time.Minute)) {
		t.Fatalf("first claim: %+v", a)
	}
	b, err := s.ClaimOutbox(ctx, "relay-b", now, time.Minute, 10)
	ok(t, err, "ClaimOutbox(b)")
	if len(b) != 1 || b[0].Target != "second@example.com" {
		t.Fatalf("second claim (the leased and the not yet due items stay): %+v", b)
	}
	// relay-a's lease runs out; relay-b takes the item over.
	late := now.Add(2 * time.Minute)
	c, err := s.ClaimOutbox(ctx, "relay-b", late, time.Minute, 10)
	ok(t, err, "ClaimOutbox after the lease")
	if len(c) != 2 || c[0].Target != "first@example.com" || c[1].Target != "second@example.com" {
		t.Fatalf("claim after the leases ran out: %+v", c)
	}
	stale := a[0]
	stale.Status, stale.Attempts, stale.UpdatedAt = store.OutboxSent, 1, late
	wantErr(t, s.FinishOutbox(ctx, "relay-a", stale), store.ErrNotFound, "FinishOutbox by an owner whose lease ran out")

	sent := c[0]
	sent.Status, sent.Attempts, sent.UpdatedAt, sent.LastStatus = store.OutboxSent, 1, late, 250
	ok(t, s.FinishOutbox(ctx, "relay-b", sent), "FinishOutbox(sent)")
	retry := c[1]
	retry.Attempts, retry.LastError, retry.NextAt, retry.UpdatedAt = 1, "connection refused", late.Add(30*time.Second), late
	ok(t, s.FinishOutbox(ctx, "relay-b", retry), "FinishOutbox(retry)")
	wantErr(t, s.FinishOutbox(ctx, "relay-b", retry), store.ErrNotFound, "FinishOutbox twice")

	d, err := s.ClaimOutbox(ctx, "relay-a", late, time.Minute, 10)
	ok(t, err, "ClaimOutbox before the retry is due")
	if len(d) != 0 {
		t.Fatalf("claimed before due or after sent: %+v", d)
	}
	e, err := s.ClaimOutbox(ctx, "relay-a", late.Add(30*time.Second), time.Minute, 10)
	ok(t, err, "ClaimOutbox when the retry is due")
	if len(e) != 1 || e[0].Target != "second@example.com" || e[0].Attempts != 1 || e[0].LastError != "connection refused" {
		t.Fatalf("retry claim: %+v", e)
	}
	all, err := s.ListOutbox(ctx, "", 0)
	ok(t, err, "ListOutbox")
	for _, it := range all {
		if it.Target == "first@example.com" && (it.Status != store.OutboxSent || it.LastStatus != 250 || it.LeaseOwner != "" || !it.LeaseUntil.IsZero()) {
			t.Fatalf("sent item: %+v", it)
		}
	}
}

// Workers claiming at once, as relays sharing a store do: every item is
// claimed by exactly one of them.
func testOutboxClaimConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const items, workers = 40, 4
	var add []store.OutboxItem
	for i := range items {
		add = append(add, outboxItem(store.OutboxMail, fmt.Sprintf("u%d@example.com", i), t0))
	}
	_, err := s.AddOutbox(ctx, add)
	ok(t, err, "AddOutbox")
	var mu sync.Mutex
	claimed := map[int64]string{}
	errs := barrier(workers, func(i int) error {
		owner := fmt.Sprintf("relay-%d", i)
		for {
			got, err := s.ClaimOutbox(ctx, owner, t0, time.Hour, 3)
			if err != nil {
				return err
			}
			if len(got) == 0 {
				return nil
			}
			mu.Lock()
			for _, it := range got {
				if prev, dup := claimed[it.ID]; dup {
					mu.Unlock()
					return fmt.Errorf("item %d claimed by %s and %s", it.ID, prev, owner)
				}
				claimed[it.ID] = owner
			}
			mu.Unlock()
		}
	})
	for _, err := range errs {
		ok(t, err, "concurrent claim")
	}
	if len(claimed) != items {
		t.Fatalf("%d of %d items claimed", len(claimed), items)
	}
}

func testOutboxPrune(t *testing.T, s store.Store) {
	ctx := t.Context()
	got, err := s.AddOutbox(ctx, []store.OutboxItem{
		outboxItem(store.OutboxMail, "old-sent@example.com", t0),
		outboxItem(store.OutboxMail, "old-pending@example.com", t0),
		outboxItem(store.OutboxMail, "new-failed@example.com", t0),
	})
	ok(t, err, "AddOutbox")
	claimed, err := s.ClaimOutbox(ctx, "relay-a", t0, time.Minute, 10)
	ok(t, err, "ClaimOutbox")
	for _, it := range claimed {
		switch it.Target {
		case "old-sent@example.com":
			it.Status, it.UpdatedAt = store.OutboxSent, t0
		case "new-failed@example.com":
			it.Status, it.UpdatedAt = store.OutboxFailed, t0.Add(48*time.Hour)
		default:
			it.UpdatedAt = t0
		}
		ok(t, s.FinishOutbox(ctx, "relay-a", it), "FinishOutbox(%s)", it.Target)
	}
	n, err := s.PruneOutbox(ctx, t0.Add(24*time.Hour))
	ok(t, err, "PruneOutbox")
	left, err := s.ListOutbox(ctx, "", 0)
	ok(t, err, "ListOutbox")
	if n != 1 || len(left) != 2 || left[0].ID == got[0].ID || left[1].ID == got[0].ID {
		t.Fatalf("pruned %d, left %+v; want only the old sent item gone", n, left)
	}
}

// ListOutbox filters by status; RetryOutbox puts only a failed item back
// to pending, due now, counted from zero, its last error kept.
func testOutboxRetry(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.AddOutbox(ctx, []store.OutboxItem{
		outboxItem(store.OutboxMail, "sent@example.com", t0),
		outboxItem(store.OutboxMail, "failed@example.com", t0.Add(time.Second)),
		outboxItem(store.OutboxMail, "pending@example.com", t0.Add(2*time.Second)),
	})
	ok(t, err, "AddOutbox")
	claimed, err := s.ClaimOutbox(ctx, "relay-a", t0.Add(time.Second), time.Minute, 2)
	ok(t, err, "ClaimOutbox")
	var failed store.OutboxItem
	for _, it := range claimed {
		it.Attempts, it.UpdatedAt = 6, t0.Add(time.Minute)
		if it.Target == "sent@example.com" {
			it.Status = store.OutboxSent
		} else {
			it.Status, it.LastError = store.OutboxFailed, "550 no such user"
			failed = it
		}
		ok(t, s.FinishOutbox(ctx, "relay-a", it), "FinishOutbox(%s)", it.Target)
	}
	if failed.ID == 0 {
		t.Fatalf("claimed %+v", claimed)
	}
	open, err := s.ListOutbox(ctx, store.OutboxMail, 0, store.OutboxPending, store.OutboxFailed)
	ok(t, err, "ListOutbox(pending, failed)")
	if len(open) != 2 || open[0].Target != "pending@example.com" || open[1].Target != "failed@example.com" {
		t.Fatalf("ListOutbox(pending, failed): %+v", open)
	}
	onlyFailed, err := s.ListOutbox(ctx, "", 0, store.OutboxFailed)
	ok(t, err, "ListOutbox(failed)")
	if len(onlyFailed) != 1 || onlyFailed[0].ID != failed.ID || onlyFailed[0].LastError != "550 no such user" {
		t.Fatalf("ListOutbox(failed): %+v", onlyFailed)
	}
	now := t0.Add(time.Hour)
	got, err := s.RetryOutbox(ctx, failed.ID, now)
	ok(t, err, "RetryOutbox")
	if got.Status != store.OutboxPending || got.Attempts != 0 || !got.NextAt.Equal(now) || got.LastError != "550 no such user" || got.LeaseOwner != "" {
		t.Fatalf("retried item: %+v", got)
	}
	_, err = s.RetryOutbox(ctx, failed.ID, now)
	wantErr(t, err, store.ErrNotFound, "RetryOutbox of a pending item")
	_, err = s.RetryOutbox(ctx, claimed[0].ID, now)
	wantErr(t, err, store.ErrNotFound, "RetryOutbox of a sent item")
	_, err = s.RetryOutbox(ctx, 1<<40, now)
	wantErr(t, err, store.ErrNotFound, "RetryOutbox of no item")
	again, err := s.ClaimOutbox(ctx, "relay-b", now, time.Minute, 10)
	ok(t, err, "ClaimOutbox after the retry")
	if len(again) != 2 {
		t.Fatalf("claimed after the retry: %+v", again)
	}
}
