package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

var updateStateTests = []subtest{
	{"PutGetList", testUpdateStates},
	{"Progress", testUpdateProgress},
	{"ConcurrentDevices", testUpdateStatesConcurrent},
}

func testUpdateStates(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, id := range []string{"dev-b", "dev-a", "dev-c", "Dev-z"} {
		ok(t, s.CreateDevice(ctx, store.Device{ID: id, Hostname: id}), "create %s", id)
	}
	_, err := s.GetUpdateState(ctx, "dev-a")
	wantErr(t, err, store.ErrNotFound, "state before any")
	wantErr(t, s.PutUpdateState(ctx, store.UpdateState{DeviceID: "nope", Version: "v1.1.0", State: 3, At: t0}), store.ErrNotFound, "state of an unknown device")

	a := store.UpdateState{DeviceID: "dev-a", Version: "v1.1.0", State: 2, At: t0}
	ok(t, s.PutUpdateState(ctx, a), "put dev-a")
	got, err := s.GetUpdateState(ctx, "dev-a")
	ok(t, err, "get dev-a")
	same(t, "dev-a", got, a)
	// The same device again: the last write replaces the state.
	a = store.UpdateState{DeviceID: "dev-a", Version: "v1.1.0", State: 1, Reason: "signature ✗ \"quoted\"", At: t0.Add(time.Second)}
	ok(t, s.PutUpdateState(ctx, a), "put dev-a again")
	got, err = s.GetUpdateState(ctx, "dev-a")
	ok(t, err, "get dev-a")
	same(t, "dev-a replaced", got, a)

	b := store.UpdateState{DeviceID: "dev-b", Version: "v1.0.0", State: 3, At: t0}
	c := store.UpdateState{DeviceID: "dev-c", Version: "v1.1.0", State: 3, At: time.Time{}}
	z := store.UpdateState{DeviceID: "Dev-z", Version: "v1.1.0", State: 4, At: t0}
	for _, u := range []store.UpdateState{c, b, z} {
		ok(t, s.PutUpdateState(ctx, u), "put %s", u.DeviceID)
	}
	all, err := s.ListUpdateStates(ctx, "", 0)
	ok(t, err, "list all")
	// Byte-wise id order: upper case first.
	same(t, "all", all, []store.UpdateState{z, a, b, c})
	page, err := s.ListUpdateStates(ctx, "", 2)
	ok(t, err, "first page")
	same(t, "first page", page, []store.UpdateState{z, a})
	page, err = s.ListUpdateStates(ctx, page[len(page)-1].DeviceID, 2)
	ok(t, err, "second page")
	same(t, "second page", page, []store.UpdateState{b, c})
	page, err = s.ListUpdateStates(ctx, "dev-c", 2)
	ok(t, err, "past the end")
	same(t, "past the end", page, nil)
}

func testUpdateProgress(t *testing.T, s store.Store) {
	ctx := context.Background()
	p, err := s.UpdateProgress(ctx, "v1.1.0")
	ok(t, err, "progress of none")
	if len(p) != 0 {
		t.Fatalf("progress with no states: %v", p)
	}
	states := []int{3, 3, 3, 2, 1, 5, 3}
	for i, st := range states {
		id := fmt.Sprintf("dev-%d", i)
		ok(t, s.CreateDevice(ctx, store.Device{ID: id, Hostname: id}), "create")
		ok(t, s.PutUpdateState(ctx, store.UpdateState{DeviceID: id, Version: "v1.1.0", State: st, At: t0}), "put")
	}
	ok(t, s.CreateDevice(ctx, store.Device{ID: "old", Hostname: "old"}), "create")
	ok(t, s.PutUpdateState(ctx, store.UpdateState{DeviceID: "old", Version: "v1.0.0", State: 3, At: t0}), "put")
	p, err = s.UpdateProgress(ctx, "v1.1.0")
	ok(t, err, "progress")
	same(t, "progress of v1.1.0", p, map[int]int64{3: 4, 2: 1, 1: 1, 5: 1})
	// A device moving to another state moves in the counts.
	ok(t, s.PutUpdateState(ctx, store.UpdateState{DeviceID: "dev-3", Version: "v1.1.0", State: 3, At: t0}), "put")
	p, err = s.UpdateProgress(ctx, "v1.1.0")
	ok(t, err, "progress")
	same(t, "progress after an install", p, map[int]int64{3: 5, 1: 1, 5: 1})
	p, err = s.UpdateProgress(ctx, "v9")
	ok(t, err, "progress of another version")
	if len(p) != 0 {
		t.Fatalf("progress of a version nobody has: %v", p)
	}
}

// testUpdateStatesConcurrent has many writers (as relays sharing the
// store) report different devices at once: every device keeps its own
// last state.
func testUpdateStatesConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n, rounds = 8, 10
	for i := range n {
		id := fmt.Sprintf("ud-%d", i)
		ok(t, s.CreateDevice(ctx, store.Device{ID: id, Hostname: id}), "create device")
	}
	errs := barrier(n, func(i int) error {
		id := fmt.Sprintf("ud-%d", i)
		for r := range rounds {
			if err := s.PutUpdateState(ctx, store.UpdateState{DeviceID: id, Version: "v1.1.0", State: r, Reason: id, At: t0.Add(time.Duration(r))}); err != nil {
				return err
			}
		}
		return nil
	})
	for i, err := range errs {
		ok(t, err, "writer %d", i)
	}
	all, err := s.ListUpdateStates(ctx, "", 0)
	ok(t, err, "list")
	if len(all) != n {
		t.Fatalf("%d states, want %d", len(all), n)
	}
	for i, u := range all {
		want := store.UpdateState{DeviceID: fmt.Sprintf("ud-%d", i), Version: "v1.1.0", State: rounds - 1, Reason: fmt.Sprintf("ud-%d", i), At: t0.Add(rounds - 1)}
		same(t, "state", u, want)
	}
}
