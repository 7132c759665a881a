package server

import (
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
			j := newHealthJob()
			for r := range reports {
				j.b = store.HealthBatch{DeviceID: id, Samples: []store.HealthSample{{ID: uint64(r + 1), Time: t0.Add(time.Duration(r) * time.Second), CPUPercent: float64(i)}}}
				if err := w.write(j); err != nil {
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
	j := newHealthJob()
	j.b = store.HealthBatch{DeviceID: "dev-00", Samples: []store.HealthSample{{ID: 99, Time: t0}}}
	if err := w.write(j); !errors.Is(err, errHealthWriterClosed) {
		t.Errorf("write after close: %v", err)
	}
}
