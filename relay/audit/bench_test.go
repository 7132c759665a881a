package audit_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/audit"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/postgres"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
	"github.com/deskside/deskside/relay/store/sqlite"
)

// BenchmarkVerify measures `deskside audit verify`'s walk on the relay:
// 20,000 keyed records in SQLite, read a page at a time and checked.
func BenchmarkVerify(b *testing.B) {
	path := filepath.Join(b.TempDir(), "deskside.db")
	st, err := sqlite.Open(b.Context(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	lg, err := audit.Open(b.Context(), audit.Config{KeyFile: filepath.Join(b.TempDir(), audit.KeyFile), Store: st})
	if err != nil {
		b.Fatal(err)
	}
	const n = 20000
	for i := 1; i < n; i++ {
		if _, err := lg.Append(b.Context(), store.AuditEvent{Time: time.Unix(int64(i), 0), Actor: "tech", Action: "command.run", Target: "dev-1",
			Detail: fmt.Sprintf("uptime: exit 0, timed_out=false, %d bytes of output", i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		rep, err := lg.Verify(b.Context(), nil)
		if err != nil || rep.Bad != nil || rep.Checked != n {
			b.Fatalf("Verify = %+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppendFanOut measures what a command fan-out asks of the audit
// log: one record per device's result, appended by many goroutines at
// once (the relay runs fanOutWorkers devices at a time), each waiting for
// its record to be stored. One op is fanOutRecords appends; records/s is
// the log's throughput, p50-ms and p99-ms one append's wait. Against
// SQLite and PostgreSQL (pgtest: DESKSIDE_TEST_POSTGRES, a schema of its
// own).
func BenchmarkAppendFanOut(b *testing.B) {
	const fanOutRecords, fanOutWorkers = 2000, 256
	for _, be := range []struct {
		name string
		open func(b *testing.B) store.Store
	}{
		{"sqlite", func(b *testing.B) store.Store {
			st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "deskside.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		}},
		{"postgres", func(b *testing.B) store.Store {
			st, err := postgres.Open(b.Context(), pgtest.DSN(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		}},
	} {
		b.Run("store="+be.name, func(b *testing.B) {
			st := be.open(b)
			lg, err := audit.Open(b.Context(), audit.Config{KeyFile: filepath.Join(b.TempDir(), audit.KeyFile), Store: st})
			if err != nil {
				b.Fatal(err)
			}
			var (
				waits []time.Duration
				mu    sync.Mutex
				next  atomic.Int64
			)
			b.ResetTimer()
			for b.Loop() {
				next.Store(0)
				var wg sync.WaitGroup
				errs := make(chan error, fanOutWorkers)
				for range fanOutWorkers {
					wg.Go(func() {
						var mine []time.Duration
						for {
							i := next.Add(1)
							if i > fanOutRecords {
								break
							}
							start := time.Now()
							_, err := lg.Append(b.Context(), store.AuditEvent{Time: start, Actor: "tech", Action: "command.run",
								Target: fmt.Sprintf("dev-%d", i), Detail: "uptime: exit 0, timed_out=false, 64 bytes of output"})
							if err != nil {
								errs <- err
								return
							}
							mine = append(mine, time.Since(start))
						}
						mu.Lock()
						waits = append(waits, mine...)
						mu.Unlock()
					})
				}
				wg.Wait()
				close(errs)
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			rep, err := lg.Verify(b.Context(), nil)
			if err != nil || rep.Bad != nil || rep.Checked != int64(b.N*fanOutRecords+1) {
				b.Fatalf("Verify after the fan-outs = %+v, %v", rep, err)
			}
			slices.Sort(waits)
			b.ReportMetric(float64(fanOutRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(waits[len(waits)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(waits[len(waits)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
