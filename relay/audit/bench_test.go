package audit_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/audit"
	"github.com/deskside/deskside/relay/store"
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
