package audit

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/deskside/deskside/relay/store"
)

// MaxBatch is the most records one store transaction appends.
const MaxBatch = 500

// appender gathers concurrent appends into one store transaction (group
// commit). The first caller to find no batch under way writes its own
// record at once; the callers that arrive while a batch is being written
// queue, and when it commits the first of them writes the whole queue (up
// to max records) as the next batch. No goroutine of its own: the writer
// of each batch is one of its callers. Each caller returns when its own
// record is committed, with that record as stored, or with the error that
// failed its batch; so, as with one transaction per record, a record is
// durable before the action it records is answered.
//
// On PostgreSQL an append costs a table lock, a read of the chain's last
// record and a commit whatever the number of records, so a fan-out's
// results, which all want the lock at once, share them (ADR 38).
type appender struct {
	write func(ctx context.Context, events []store.AuditEvent) ([]store.AuditEvent, error)
	max   int

	mu      sync.Mutex
	writing bool       // a caller is writing a batch; when false, queue is empty
	queue   []*pending // appends waiting for the next batch, oldest first
}

// pending is one caller's append.
type pending struct {
	ctx context.Context
	e   store.AuditEvent
	// taken: in a batch being written, or handed the next batch to write;
	// the caller then waits for the outcome even if its ctx is done.
	taken bool
	done  chan outcome // buffered: whoever sends never waits
}

// outcome is what a waiting caller receives: its record as stored, the
// batch's error, or the turn to write the next batch.
type outcome struct {
	e    store.AuditEvent
	err  error
	lead bool
}

func newAppender(max int, write func(ctx context.Context, events []store.AuditEvent) ([]store.AuditEvent, error)) *appender {
	return &appender{write: write, max: max}
}

// append stores e in the next batch and returns it as stored.
func (a *appender) append(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	p := &pending{ctx: ctx, e: e, done: make(chan outcome, 1)}
	a.mu.Lock()
	a.queue = append(a.queue, p)
	if !a.writing {
		a.writing, p.taken = true, true
		a.mu.Unlock()
		return a.lead(p)
	}
	a.mu.Unlock()
	var o outcome
	select {
	case o = <-p.done:
	case <-ctx.Done():
		a.mu.Lock()
		if !p.taken {
			if i := slices.Index(a.queue, p); i >= 0 {
				a.queue = slices.Delete(a.queue, i, i+1)
			}
			a.mu.Unlock()
			return store.AuditEvent{}, fmt.Errorf("audit: append: %w", context.Cause(ctx))
		}
		a.mu.Unlock()
		o = <-p.done
	}
	if o.lead {
		return a.lead(p)
	}
	return o.e, o.err
}

// lead writes the next batch, which starts with p, delivers every
// caller's outcome and hands the batch after it to the first caller still
// queued.
func (a *appender) lead(p *pending) (store.AuditEvent, error) {
	a.mu.Lock()
	n := min(len(a.queue), a.max)
	batch := slices.Clone(a.queue[:n])
	m := copy(a.queue, a.queue[n:])
	clear(a.queue[m:])
	a.queue = a.queue[:m]
	for _, q := range batch {
		q.taken = true
	}
	a.mu.Unlock()

	events := make([]store.AuditEvent, len(batch))
	for i, q := range batch {
		events[i] = q.e
	}
	ctx, release := batchContext(batch)
	out, err := a.write(ctx, events)
	release()
	if err == nil && len(out) != len(batch) {
		err = fmt.Errorf("audit: the store appended %d records for %d", len(out), len(batch))
	}
	for i, q := range batch {
		if err != nil {
			q.done <- outcome{err: err}
		} else {
			q.done <- outcome{e: out[i]}
		}
	}

	a.mu.Lock()
	if len(a.queue) > 0 {
		next := a.queue[0]
		next.taken = true
		next.done <- outcome{lead: true}
	} else {
		a.writing = false
	}
	a.mu.Unlock()

	o := <-p.done
	return o.e, o.err
}

// batchContext is the context a batch is written under: it carries the
// first caller's values and is done only when every caller in the batch
// has given up, so that one caller's cancellation does not fail the
// others' records. release frees it.
func batchContext(batch []*pending) (ctx context.Context, release func()) {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(batch[0].ctx))
	var left atomic.Int64
	left.Store(int64(len(batch)))
	stops := make([]func() bool, 0, len(batch))
	for _, q := range batch {
		stops = append(stops, context.AfterFunc(q.ctx, func() {
			if left.Add(-1) == 0 {
				cancel(context.Cause(q.ctx))
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel(nil)
	}
}
