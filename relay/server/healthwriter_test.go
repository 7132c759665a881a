package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/sqlite"
)

// doneJobs is a healthReceiver for tests: it hands each job back once
// its batch is written.
type doneJobs chan *healthJob

func (d doneJobs) healthWritten(j *healthJob) { d <- j }

// writeAndWait submits j and returns once its batch is written: the
// batch's error, or submit's.
func writeAndWait(w *healthWriter, j *healthJob) error {
	done := make(doneJobs, 1)
	j.to = done
	if err := w.submit(j); err != nil {
		return err
	}
	<-done
	return j.err
}

// TestHealthWriterBatchesAcrossDevices sends reports of many devices at
// once through one writer on a real SQLite store: each report's write
// returns only once its samples can be read back, an unknown device fails
// its own report only, reports share transactions, and after close a
// report is refused with a reason.
func TestHealthWriterBatchesAcrossDevices(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const devices, reports = 40, 5
	for i := range devices {
		if err := st.CreateDevice(t.Context(), store.Device{ID: fmt.Sprintf("dev-%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	writes := prometheus.NewCounter(prometheus.CounterOpts{Name: "writes"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(writes)
	w := newHealthWriter(st, writes)
	t0 := time.Now().Truncate(time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, devices+1)
	for i := range devices + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("dev-%02d", i) // dev-40 is unknown
			j := new(healthJob)
			for r := range reports {
				j.b = store.HealthBatch{DeviceID: id, Samples: []store.HealthSample{{ID: uint64(r + 1), Time: t0.Add(time.Duration(r) * time.Second), CPUPercent: float64(i)}}}
				if err := writeAndWait(w, j); err != nil {
					errs <- fmt.Errorf("%s report %d: %w", id, r, err)
					return
				}
				if i == devices {
					if !errors.Is(j.b.Err, store.ErrNotFound) {
						errs <- fmt.Errorf("%s (unknown) report %d: err %v, want ErrNotFound", id, r, j.b.Err)
					}
					continue
				}
				if j.b.Err != nil || j.b.Added != 1 {
					errs <- fmt.Errorf("%s report %d: added %d, err %v", id, r, j.b.Added, j.b.Err)
					return
				}
				// Written means stored: the sample reads back at once.
				h, err := st.LatestHealth(t.Context(), id)
				if err != nil || h.ID != uint64(r+1) {
					errs <- fmt.Errorf("%s report %d: latest stored %d, %v", id, r, h.ID, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gather: %v, %d families", err, len(mfs))
	}
	n := mfs[0].GetMetric()[0].GetCounter().GetValue()
	t.Logf("%d reports in %.0f transactions", (devices+1)*reports, n)
	if n >= (devices+1)*reports {
		t.Errorf("%d reports took %.0f transactions: none were shared", (devices+1)*reports, n)
	}
	w.close()
	j := new(healthJob)
	j.b = store.HealthBatch{DeviceID: "dev-00", Samples: []store.HealthSample{{ID: 99, Time: t0}}}
	if err := writeAndWait(w, j); !errors.Is(err, errHealthWriterClosed) {
		t.Errorf("write after close: %v", err)
	}
}

// gatedBatcher holds every AddHealthBatches until the test lets it go, as
// a slow disk would; it stands in for the store only to hold the writer
// still at a known point.
type gatedBatcher struct {
	entered chan int // each call's batch count
	gate    chan struct{}
}

func (g gatedBatcher) AddHealthBatches(_ context.Context, bs []store.HealthBatch) error {
	g.entered <- len(bs)
	<-g.gate
	for i := range bs {
		bs[i].Added = len(bs[i].Samples)
	}
	return nil
}

// TestHealthWriterQueueBound: while the writer is busy, reports queue up
// to maxQueued samples; the next stream waits for room (as it did on a
// channel), gets it when the writer takes the queue, and a stream still
// waiting at close is refused with a reason.
func TestHealthWriterQueueBound(t *testing.T) {
	g := gatedBatcher{entered: make(chan int, 8), gate: make(chan struct{})}
	w := newHealthWriter(g, prometheus.NewCounter(prometheus.CounterOpts{Name: "writes"}))
	w.mu.Lock()
	w.linger, w.maxRows, w.maxQueued = 0, 1, 2
	w.mu.Unlock()
	written := make(doneJobs, 8)
	job := func(id uint64) *healthJob {
		j := &healthJob{to: written}
		j.b = store.HealthBatch{DeviceID: "dev", Samples: []store.HealthSample{{ID: id}}}
		return j
	}
	first := job(1)
	if err := w.submit(first); err != nil {
		t.Fatal(err)
	}
	if n := <-g.entered; n != 1 {
		t.Fatalf("first batch holds %d reports, want 1", n)
	}
	// The writer is in the store: two more fill the queue.
	for id := uint64(2); id <= 3; id++ {
		if err := w.submit(job(id)); err != nil {
			t.Fatal(err)
		}
	}
	fourth := make(chan error, 1)
	go func() { fourth <- w.submit(job(4)) }()
	select {
	case err := <-fourth:
		t.Fatalf("a report was queued past the bound (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	g.gate <- struct{}{} // the first batch commits; the writer takes 2 and 3
	if j := <-written; j != first {
		t.Fatalf("the first batch answered report %d, want 1", j.b.Samples[0].ID)
	}
	if n := <-g.entered; n != 2 {
		t.Fatalf("second batch holds %d reports, want 2", n)
	}
	if err := <-fourth; err != nil {
		t.Fatalf("the waiting report: %v", err)
	}
	// The writer is in the store again with 4 queued; fill the queue and
	// leave a fifth waiting across close.
	if err := w.submit(job(5)); err != nil {
		t.Fatal(err)
	}
	sixth := make(chan error, 1)
	go func() { sixth <- w.submit(job(6)) }()
	time.Sleep(50 * time.Millisecond)
	closed := make(chan struct{})
	go func() { w.close(); close(closed) }()
	if err := <-sixth; !errors.Is(err, errHealthWriterClosed) {
		t.Errorf("a report waiting for room at close: %v, want errHealthWriterClosed", err)
	}
	g.gate <- struct{}{} // the second batch
	if n := <-g.entered; n != 2 {
		t.Errorf("the last batch, written at close, holds %d reports, want the 2 queued", n)
	}
	g.gate <- struct{}{}
	<-closed
}
