package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deskside/deskside/relay/store"
)

// healthWriter writes the health reports of every agent stream on this
// relay through one goroutine, coalescing the reports that arrive within
// healthBatchLinger of each other (or healthBatchRows samples) into one
// store transaction: with SQLite's single writer a commit, not a report,
// is what costs. Each stream waits for its report's transaction to commit
// before it acknowledges the report, so an Ack still means stored.
//
// Reports wait in a queue under a mutex, not in a channel: a stream adds
// its report and goes on without waking the writer (only a batch's first
// report, or one that fills it, does), and the writer takes the whole
// batch at once when the linger ends. Through an unbuffered channel each
// report was a hand-off between two goroutines, a wake-up or two apiece
// (ADR 36).
type healthWriter struct {
	st     store.HealthBatcher
	writes prometheus.Counter
	quit   chan struct{}
	done   sync.WaitGroup
	// wake tells the writer a batch has begun or is full.
	wake chan struct{}

	mu     sync.Mutex
	room   *sync.Cond // signalled when the writer takes the queue
	queue  []*healthJob
	rows   int // samples in queue
	closed bool

	// linger and maxRows bound a batch (healthBatchLinger, healthBatchRows);
	// maxQueued bounds the queue: a stream that finds it that full waits
	// for the writer, as it did for a channel.
	linger    time.Duration
	maxRows   int
	maxQueued int
}

const (
	// healthBatchLinger is how long the writer waits, after the first
	// report of a batch, for more. At 10,000 agents sampling every 15 s
	// (667 reports/s) a batch holds about 30 reports; one agent's Ack
	// waits for its own batch's commit, about 30 ms at the median.
	// Nobody waits for a health Ack (the next sample is 15 s away; the
	// agent's stream reads on meanwhile, agentsvc.go), and every report in
	// a batch shares its commit and the pages the batch dirties: on a
	// quiet machine 20 ms cost 0.67–0.79 of 5 ms's CPU per report, 50 ms
	// 0.82–0.90 of 20 ms's, with Ack p99 at 60 ms (ADR 36).
	healthBatchLinger = 50 * time.Millisecond
	// healthBatchRows ends a batch early: a reconnecting fleet's backlogs
	// (up to wire.MaxHealthBatch samples a report) make one transaction
	// no longer than this many rows and a report.
	healthBatchRows = 2000
)

// healthJob is one report's part of a batch, with the report's sample
// rows. Jobs come from healthJobs: a report costs no allocation for them,
// and an idle agent holds none.
type healthJob struct {
	b    store.HealthBatch
	err  error // the whole batch failed
	rows []store.HealthSample
	now  time.Time // when the report was checked
	// to is told, in a goroutine of its own, once the batch is written;
	// ref is the report's id, for its answer.
	to  healthReceiver
	ref uint64
}

// healthReceiver is told that its job's batch was written (or failed):
// agentConn, which answers the agent.
type healthReceiver interface{ healthWritten(j *healthJob) }

var healthJobs = sync.Pool{New: func() any { return new(healthJob) }}

// maxPooledRows is the largest row buffer a pooled job keeps: a usual
// report holds one sample; a backlog's buffer of a thousand goes.
const maxPooledRows = 16

// release returns j to healthJobs, once its receiver has been told (the
// writer is done with j by then).
func (j *healthJob) release() {
	clear(j.rows)
	if cap(j.rows) > maxPooledRows {
		j.rows = nil
	}
	j.rows = j.rows[:0]
	j.b, j.err, j.now, j.to, j.ref = store.HealthBatch{}, nil, time.Time{}, nil, 0
	healthJobs.Put(j)
}

func newHealthWriter(st store.HealthBatcher, writes prometheus.Counter) *healthWriter {
	w := &healthWriter{st: st, writes: writes, quit: make(chan struct{}), wake: make(chan struct{}, 1),
		linger: healthBatchLinger, maxRows: healthBatchRows, maxQueued: 4 * healthBatchRows}
	w.room = sync.NewCond(&w.mu)
	w.done.Add(1)
	go w.run()
	return w
}

// submit queues j for the writer without waiting for its batch: the
// writer starts j.to.healthWritten once the batch is written (a
// goroutine started then costs less than one started now that parks until
// then). After an error the writer has not taken j.
func (w *healthWriter) submit(j *healthJob) error {
	w.mu.Lock()
	for w.rows >= w.maxQueued && !w.closed {
		w.room.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		return errHealthWriterClosed
	}
	w.queue = append(w.queue, j)
	w.rows += len(j.b.Samples)
	signal := len(w.queue) == 1 || w.rows >= w.maxRows
	w.mu.Unlock()
	if signal {
		select {
		case w.wake <- struct{}{}:
		default: // already told
		}
	}
	return nil
}

// take returns the queued jobs (in a slice swapped with spare) and empties
// the queue.
func (w *healthWriter) take(spare []*healthJob) []*healthJob {
	w.mu.Lock()
	jobs := w.queue
	w.queue, w.rows = spare[:0], 0
	w.room.Broadcast()
	w.mu.Unlock()
	return jobs
}

// close stops the writer once the reports already queued are written.
// Streams still sending get errHealthWriterClosed.
func (w *healthWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.room.Broadcast()
	w.mu.Unlock()
	close(w.quit)
	w.done.Wait()
}

func (w *healthWriter) run() {
	defer w.done.Done()
	var (
		jobs, spare []*healthJob
		batches     []store.HealthBatch
	)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		stop := false
		select {
		case <-w.wake:
		case <-w.quit:
			stop = true
		}
		// The batch's first report is in: wait up to linger for more,
		// unless it is full already or fills first.
		if !stop && w.linger > 0 && !w.full() {
			timer.Reset(w.linger)
		linger:
			for {
				select {
				case <-timer.C:
					break linger
				case <-w.wake:
					if w.full() {
						break linger
					}
				case <-w.quit:
					stop = true
					break linger
				}
			}
			timer.Stop()
		}
		jobs = w.take(spare)
		if len(jobs) > 0 {
			batches = w.flush(jobs, batches[:0])
		}
		clear(jobs)
		spare = jobs
		if stop {
			return
		}
	}
}

// full reports whether the queue holds a whole batch.
func (w *healthWriter) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rows >= w.maxRows
}

// flush writes jobs in one transaction and answers each; it returns
// batches (emptied) for the next.
func (w *healthWriter) flush(jobs []*healthJob, batches []store.HealthBatch) []store.HealthBatch {
	for _, j := range jobs {
		batches = append(batches, j.b)
	}
	err := w.st.AddHealthBatches(context.Background(), batches)
	w.writes.Inc()
	for i, j := range jobs {
		j.b.Added, j.b.Err, j.err = batches[i].Added, batches[i].Err, err
		batches[i] = store.HealthBatch{} // drop the samples
		go j.to.healthWritten(j)
	}
	return batches
}

var errHealthWriterClosed = errors.New("relay is shutting down; send the report again after reconnecting")
