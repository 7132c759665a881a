package server

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type ev struct {
	key string
	n   int
}

func drain[T any](h *hub[T], sub *subscription[T]) []T {
	var out []T
	for {
		select {
		case v, ok := <-sub.ch:
			if !ok {
				return out
			}
			out = append(out, v)
			h.received(sub)
		default:
			return out
		}
	}
}

// TestHubCutsOffASlowWatcher: without a key, a watcher more than its
// buffer behind is dropped and told why.
func TestHubCutsOffASlowWatcher(t *testing.T) {
	h := newHub[int]()
	sub := h.subscribe()
	for i := range watchBuffer + 1 {
		h.publish(i)
	}
	if got := drain(h, sub); len(got) != watchBuffer || !sub.lagged {
		t.Fatalf("got %d events, lagged %v; want %d and cut off", len(got), sub.lagged, watchBuffer)
	}
}

// TestConflatingHub: once a watcher's buffer is full its events wait,
// latest per key, in the order their keys first waited; past maxWaiting
// keys it is cut off.
func TestConflatingHub(t *testing.T) {
	h := newConflatingHub(func(e ev) string { return e.key }, 10)
	sub := h.subscribe()
	for i := range watchBuffer {
		h.publish(ev{fmt.Sprint("fill", i), i})
	}
	for i := range 1000 {
		h.publish(ev{fmt.Sprint("k", i%10), i})
	}
	got := drain(h, sub)
	if sub.lagged || len(got) != watchBuffer+10 {
		t.Fatalf("got %d events (lagged %v), want %d", len(got), sub.lagged, watchBuffer+10)
	}
	for i, e := range got[watchBuffer:] {
		if want := (ev{fmt.Sprint("k", i), 990 + i}); e != want {
			t.Fatalf("waiting event %d is %+v, want %+v", i, e, want)
		}
	}
	// Drained: the next event goes straight to the channel again.
	h.publish(ev{"k0", 5000})
	if got := drain(h, sub); len(got) != 1 || got[0].n != 5000 {
		t.Fatalf("after draining: %+v", got)
	}

	for i := range watchBuffer + 11 {
		h.publish(ev{fmt.Sprint("x", i), i})
	}
	if !sub.lagged {
		t.Fatal("11 distinct keys waiting with maxWaiting 10: not cut off")
	}
	if _, ok := h.subs[sub]; ok {
		t.Fatal("a cut-off watcher is still subscribed")
	}
}

// TestConflatingHubConcurrent: a publisher far faster than its watcher;
// the watcher ends with every key's last value, never cut off.
func TestConflatingHubConcurrent(t *testing.T) {
	h := newConflatingHub(func(e ev) string { return e.key }, 1000)
	sub := h.subscribe()
	const keys, events = 500, 100000
	last := map[string]int{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for v := range sub.ch {
			last[v.key] = v.n
			h.received(sub)
		}
	}()
	for i := range events {
		h.publish(ev{fmt.Sprint(i % keys), i})
	}
	for caughtUp := false; !caughtUp; {
		h.mu.Lock()
		caughtUp = len(sub.order) == 0 && len(sub.ch) == 0
		h.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	h.unsubscribe(sub)
	wg.Wait()
	if sub.lagged {
		t.Fatal("cut off")
	}
	for k := range keys {
		if want := events - keys + k; last[fmt.Sprint(k)] != want {
			t.Fatalf("key %d ended at %d, want %d", k, last[fmt.Sprint(k)], want)
		}
	}
}
