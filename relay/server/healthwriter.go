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
type healthWriter struct {
	st     store.HealthBatcher
	writes prometheus.Counter
	in     chan *healthJob
	quit   chan struct{}
	done   sync.WaitGroup

	// linger and maxRows bound a batch (healthBatchLinger, healthBatchRows).
	linger  time.Duration
	maxRows int
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
	done chan struct{}
	rows []store.HealthSample
	now  time.Time // when the report was checked
	// owner, when set, is answered in a goroutine of its own once the
	// batch is written (healthWritten, with ref, the report's id);
	// otherwise the writer signals done.
	owner *agentConn
	ref   uint64
}

var healthJobs = sync.Pool{New: func() any { return newHealthJob() }}

func newHealthJob() *healthJob { return &healthJob{done: make(chan struct{}, 1)} }

// maxPooledRows is the largest row buffer a pooled job keeps: a usual
// report holds one sample; a backlog's buffer of a thousand goes.
const maxPooledRows = 16

// release returns j to healthJobs. Only the report's own goroutine calls
// it, after write returned (the writer is done with j by then).
func (j *healthJob) release() {
	clear(j.rows)
	if cap(j.rows) > maxPooledRows {
		j.rows = nil
	}
	j.rows = j.rows[:0]
	j.b, j.err, j.now, j.owner, j.ref = store.HealthBatch{}, nil, time.Time{}, nil, 0
	healthJobs.Put(j)
}

func newHealthWriter(st store.HealthBatcher, writes prometheus.Counter) *healthWriter {
	w := &healthWriter{st: st, writes: writes, in: make(chan *healthJob), quit: make(chan struct{}), linger: healthBatchLinger, maxRows: healthBatchRows}
	w.done.Add(1)
	go w.run()
	return w
}

// write stores j's batch and returns when its transaction committed (or
// failed); errHealthWriterClosed after close.
func (w *healthWriter) write(j *healthJob) error {
	if err := w.submit(j); err != nil {
		return err
	}
	<-j.done
	return j.err
}

// submit hands j to the writer without waiting for its batch: the writer
// starts j.owner.healthWritten once the batch is written (a goroutine
// started then costs less than one started now that parks until then).
// After an error the writer has not taken j.
func (w *healthWriter) submit(j *healthJob) error {
	select {
	case w.in <- j:
		return nil
	case <-w.quit:
		return errHealthWriterClosed
	}
}

// close stops the writer once the batch under way is written. Streams
// still sending get errHealthWriterClosed.
func (w *healthWriter) close() {
	close(w.quit)
	w.done.Wait()
}

func (w *healthWriter) run() {
	defer w.done.Done()
	var (
		jobs    []*healthJob
		batches []store.HealthBatch
	)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var first *healthJob
		select {
		case first = <-w.in:
		case <-w.quit:
			return
		}
		jobs = append(jobs[:0], first)
		rows := len(first.b.Samples)
		// Whatever is waiting joins the batch; then, up to linger, whatever
		// comes.
		var expired <-chan time.Time
		if w.linger > 0 {
			timer.Reset(w.linger)
			expired = timer.C
		}
	collect:
		for rows < w.maxRows {
			select {
			case j := <-w.in:
				jobs = append(jobs, j)
				rows += len(j.b.Samples)
				continue
			default:
			}
			if expired == nil {
				break
			}
			select {
			case j := <-w.in:
				jobs = append(jobs, j)
				rows += len(j.b.Samples)
			case <-expired:
				break collect
			case <-w.quit:
				break collect
			}
		}
		timer.Stop()
		batches = batches[:0]
		for _, j := range jobs {
			batches = append(batches, j.b)
		}
		err := w.st.AddHealthBatches(context.Background(), batches)
		w.writes.Inc()
		for i, j := range jobs {
			j.b.Added, j.b.Err, j.err = batches[i].Added, batches[i].Err, err
			batches[i] = store.HealthBatch{} // drop the samples
			if j.owner != nil {
				go j.owner.healthWritten(j)
			} else {
				j.done <- struct{}{}
			}
		}
		clear(jobs)
	}
}

var errHealthWriterClosed = errors.New("relay is shutting down; send the report again after reconnecting")
