package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/postgres"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
	"github.com/deskside/deskside/relay/store/sqlite"
)

// batchBackend opens a fresh store; refuse makes the database itself
// refuse any audit record whose detail is "refuse" (a trigger in SQLite,
// a CHECK constraint in PostgreSQL), so that a batch holding one fails
// for real.
type batchBackend struct {
	name string
	open func(t *testing.T) (st Store, refuse func())
}

var batchBackends = []batchBackend{
	{"sqlite", func(t *testing.T) (Store, func()) {
		path := filepath.Join(t.TempDir(), "deskside.db")
		st, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, func() {
			db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON audit_log WHEN NEW.detail = 'refuse'
				BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
				t.Fatal(err)
			}
		}
	}},
	{"postgres", func(t *testing.T) (Store, func()) {
		dsn := pgtest.DSN(t)
		st, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, func() {
			c, err := pgx.Connect(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			if _, err := c.Exec(t.Context(), `ALTER TABLE audit_log ADD CONSTRAINT refuse CHECK (detail <> 'refuse'::bytea) NOT VALID`); err != nil {
				t.Fatal(err)
			}
		}
	}},
}

// gated is a Log whose store writes wait, one by one, for the test to
// let them go, and are recorded with the number of records each held.
type gated struct {
	*Log
	mu    sync.Mutex
	sizes []int
	gate  chan struct{}
}

func openGated(t *testing.T, st Store) *gated {
	t.Helper()
	lg, err := Open(t.Context(), Config{KeyFile: filepath.Join(t.TempDir(), KeyFile), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	g := &gated{Log: lg, gate: make(chan struct{})}
	write := lg.app.write
	lg.app.write = func(ctx context.Context, events []store.AuditEvent) ([]store.AuditEvent, error) {
		g.mu.Lock()
		g.sizes = append(g.sizes, len(events))
		g.mu.Unlock()
		<-g.gate
		return write(ctx, events)
	}
	return g
}

// waitUntil polls ok until it holds, failing t after 10 s.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (g *gated) writes() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sizes)
}

func (g *gated) queued() int {
	g.app.mu.Lock()
	defer g.app.mu.Unlock()
	return len(g.app.queue)
}

type appended struct {
	e   store.AuditEvent
	err error
}

// start appends e in a goroutine; the result arrives on the channel.
func (g *gated) start(ctx context.Context, e store.AuditEvent) <-chan appended {
	ch := make(chan appended, 1)
	go func() {
		got, err := g.Append(ctx, e)
		ch <- appended{got, err}
	}()
	return ch
}

var batchT0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

func ev(detail string) store.AuditEvent {
	return store.AuditEvent{Time: batchT0, Actor: "tech", Action: "command.run", Target: "dev", Detail: detail}
}

// TestAppendGroupsWaitingAppends: appends that arrive while a batch is
// being written go in the next one, up to max records a batch, each
// caller getting its own record as stored.
func TestAppendGroupsWaitingAppends(t *testing.T) {
	for _, b := range batchBackends {
		t.Run(b.name, func(t *testing.T) {
			st, _ := b.open(t)
			g := openGated(t, st)
			g.app.max = 4
			first := g.start(t.Context(), ev("first"))
			waitUntil(t, "the first write", func() bool { return g.writes() == 1 })
			var waiting []<-chan appended
			for i := range 10 {
				waiting = append(waiting, g.start(t.Context(), ev(fmt.Sprint(i))))
				waitUntil(t, "the append to queue", func() bool { return g.queued() == i+1 })
			}
			close(g.gate)
			results := []appended{<-first}
			for _, ch := range waiting {
				results = append(results, <-ch)
			}
			if !slices.Equal(g.sizes, []int{1, 4, 4, 2}) {
				t.Errorf("store writes of %v records, want [1 4 4 2]", g.sizes)
			}
			stored, err := st.ScanAudit(t.Context(), g.Anchor(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(stored) != len(results) {
				t.Fatalf("%d records stored, want %d", len(stored), len(results))
			}
			for i, r := range results {
				// The queue is written in arrival order.
				if r.err != nil || r.e != stored[i] {
					t.Errorf("append %d returned %+v, %v; stored %+v", i, r.e, r.err, stored[i])
				}
			}
			if rep, err := g.Verify(t.Context(), nil); err != nil || rep.Bad != nil || rep.Checked != 12 {
				t.Fatalf("Verify = %+v, %v", rep, err)
			}
		})
	}
}

// TestAppendBatchErrorFailsItsCallers: a batch the database refuses fails
// every append in it, and only those; the log goes on.
func TestAppendBatchErrorFailsItsCallers(t *testing.T) {
	for _, b := range batchBackends {
		t.Run(b.name, func(t *testing.T) {
			st, refuse := b.open(t)
			g := openGated(t, st)
			refuse()
			first := g.start(t.Context(), ev("first"))
			waitUntil(t, "the first write", func() bool { return g.writes() == 1 })
			var waiting []<-chan appended
			for i, d := range []string{"a", "refuse", "b"} {
				waiting = append(waiting, g.start(t.Context(), ev(d)))
				waitUntil(t, "the append to queue", func() bool { return g.queued() == i+1 })
			}
			close(g.gate)
			if r := <-first; r.err != nil {
				t.Fatalf("the first batch: %v", r.err)
			}
			for i, ch := range waiting {
				if r := <-ch; r.err == nil || !strings.Contains(r.err.Error(), "refuse") || r.e != (store.AuditEvent{}) {
					t.Errorf("append %d in the refused batch = %+v, %v; want the batch's error", i, r.e, r.err)
				}
			}
			if _, err := g.Append(t.Context(), ev("after")); err != nil {
				t.Fatalf("append after the refused batch: %v", err)
			}
			if rep, err := g.Verify(t.Context(), nil); err != nil || rep.Bad != nil || rep.Checked != 3 || rep.Last.Detail != "after" {
				t.Fatalf("Verify = %+v, %v; want the anchor, first and after", rep, err)
			}
		})
	}
}

// TestAppendCancel: an append whose context ends while it waits for a
// batch leaves without writing; one whose batch is being written is
// written, and its context ending does not fail the others in the batch.
func TestAppendCancel(t *testing.T) {
	for _, b := range batchBackends {
		t.Run(b.name, func(t *testing.T) {
			st, _ := b.open(t)
			g := openGated(t, st)
			first := g.start(t.Context(), ev("first"))
			waitUntil(t, "the first write", func() bool { return g.writes() == 1 })
			gone, cancelGone := context.WithCancel(t.Context())
			left := g.start(gone, ev("gone"))
			waitUntil(t, "the append to queue", func() bool { return g.queued() == 1 })
			leader, cancelLeader := context.WithCancel(t.Context())
			defer cancelLeader()
			led := g.start(leader, ev("leader"))
			waitUntil(t, "the append to queue", func() bool { return g.queued() == 2 })
			cancelGone()
			if r := <-left; !errors.Is(r.err, context.Canceled) {
				t.Fatalf("cancelled while queued: %+v, %v; want context.Canceled", r.e, r.err)
			}
			other := g.start(t.Context(), ev("other"))
			waitUntil(t, "the append to queue", func() bool { return g.queued() == 2 })
			g.gate <- struct{}{} // the first batch
			if r := <-first; r.err != nil {
				t.Fatal(r.err)
			}
			// The second batch, led by "leader", is being written when its
			// leader's context ends.
			waitUntil(t, "the second write", func() bool { return g.writes() == 2 })
			cancelLeader()
			close(g.gate)
			for _, ch := range []<-chan appended{led, other} {
				if r := <-ch; r.err != nil {
					t.Errorf("append in the batch whose leader's context ended: %v", r.err)
				}
			}
			if !slices.Equal(g.sizes, []int{1, 2}) {
				t.Errorf("store writes of %v records, want [1 2]", g.sizes)
			}
			stored, err := st.ListAudit(t.Context(), store.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			var details []string
			for _, e := range stored {
				details = append(details, e.Detail)
			}
			if want := []string{"other", "leader", "first"}; !slices.Equal(details[:3], want) || len(details) != 4 {
				t.Errorf("stored %q, want %q and the anchor", details, want)
			}
		})
	}
}

// TestAppendConcurrent: many goroutines appending through one Log, each
// getting its own record back sealed; the log verifies.
func TestAppendConcurrent(t *testing.T) {
	for _, b := range batchBackends {
		t.Run(b.name, func(t *testing.T) {
			st, _ := b.open(t)
			lg, err := Open(t.Context(), Config{KeyFile: filepath.Join(t.TempDir(), KeyFile), Store: st})
			if err != nil {
				t.Fatal(err)
			}
			const writers, each = 64, 20
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						in := ev(fmt.Sprintf("writer %d event %d", w, i))
						got, err := lg.Append(t.Context(), in)
						switch {
						case err != nil:
							errs <- err
							return
						case got.Detail != in.Detail || got.Hash != lg.Seal(got.PrevHash, got):
							errs <- fmt.Errorf("append returned %+v for %+v", got, in)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if rep, err := lg.Verify(t.Context(), nil); err != nil || rep.Bad != nil || rep.Checked != writers*each+1 {
				t.Fatalf("Verify = %+v, %v", rep, err)
			}
		})
	}
}
