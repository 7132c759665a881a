package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/storetest"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := openTemp(t)
		return s
	})
}

func TestOpenPragmas(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	for _, tc := range []struct {
		db     string
		pragma string
		want   string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "foreign_keys", "1"},
		{"writer", "synchronous", "1"}, // NORMAL
		{"writer", "busy_timeout", fmt.Sprint(busyTimeout.Milliseconds())},
		{"reader", "foreign_keys", "1"},
		{"reader", "query_only", "1"},
		{"reader", "busy_timeout", fmt.Sprint(busyTimeout.Milliseconds())},
	} {
		db := s.w
		if tc.db == "reader" {
			db = s.r
		}
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("%s PRAGMA %s: %v", tc.db, tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("%s PRAGMA %s = %q, want %q", tc.db, tc.pragma, got, tc.want)
		}
	}
	// The reader pool really cannot write.
	if _, err := s.r.ExecContext(ctx, `DELETE FROM devices`); err == nil {
		t.Errorf("a write through the reader pool succeeded")
	}
}

func TestOpenBadPath(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db?mode=memory", filepath.Join(t.TempDir(), "a?b.db"), filepath.Join(t.TempDir(), "missing-dir", "x.db")} {
		if s, err := Open(t.Context(), p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "relay.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	d := store.Device{ID: "dev-1", Hostname: "pc-1", FirstSeen: time.Unix(0, 1234567890123456789)}
	if err := s.CreateDevice(ctx, d); err != nil {
		t.Fatalf("CreateDevice: %v", err)
	}
	if _, err := s.AddHealthSamples(ctx, d.ID, []store.HealthSample{{ID: 1, Time: d.FirstSeen, CPUPercent: 12.5}}); err != nil {
		t.Fatalf("AddHealthSamples: %v", err)
	}
	e, err := s.AppendAudit(ctx, store.AuditEvent{Time: d.FirstSeen, Actor: "a", Action: "b"}, store.AuditHash)
	if err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	for i := range 2 {
		s, err = Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		var migs, v int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*), max(version) FROM schema_migrations`).Scan(&migs, &v); err != nil {
			t.Fatalf("schema_migrations: %v", err)
		}
		if migs != latestVersion() || v != latestVersion() {
			t.Errorf("reopen %d: %d migrations recorded up to version %d, want %d", i, migs, v, latestVersion())
		}
		got, err := s.GetDevice(ctx, d.ID)
		if err != nil || !got.FirstSeen.Equal(d.FirstSeen) {
			t.Errorf("reopen %d: GetDevice = %+v, %v", i, got, err)
		}
		if h, err := s.LatestHealth(ctx, d.ID); err != nil || h.CPUPercent != 12.5 {
			t.Errorf("reopen %d: LatestHealth = %+v, %v", i, h, err)
		}
		// The audit chain continues from the stored head.
		e2, err := s.AppendAudit(ctx, store.AuditEvent{Time: d.FirstSeen, Actor: "a", Action: fmt.Sprint(i)}, store.AuditHash)
		if err != nil || e2.Seq != e.Seq+1 || e2.PrevHash != e.Hash {
			t.Errorf("reopen %d: AppendAudit = %+v, %v; previous %+v", i, e2, err, e)
		}
		e = e2
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func TestSchemaTooNew(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "relay.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	newer := latestVersion() + 1
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, '9999_future.sql', 0)`, newer); err != nil {
		t.Fatalf("insert future migration: %v", err)
	}
	s.Close()

	s, err = Open(ctx, path)
	if err == nil {
		s.Close()
		t.Fatalf("Open of a database at version %d succeeded", newer)
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("Open error %v is not ErrSchemaTooNew", err)
	}
	for _, want := range []string{fmt.Sprintf("version %d", newer), fmt.Sprintf("up to %d", latestVersion())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not mention %q", err, want)
		}
	}
}

func TestMigrationsNumbered(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Name != "0001_init.sql" {
		t.Fatalf("migrations = %+v", ms)
	}
}

// TestWriteFailureKeepsData makes the writer fail the way a full disk or a
// read-only database does, and checks that the failing batch reports the
// cause and that nothing stored before, or half of the batch, is lost.
func TestWriteFailureKeepsData(t *testing.T) {
	tests := []struct {
		name     string
		fail     string // run on the writer connection to cause the failure
		restore  string
		wantCode int
		wantText string
	}{
		// max_page_count caps the file at its current size: the next
		// pages needed fail with SQLITE_FULL, as on a full disk.
		{"full", `PRAGMA max_page_count = %d`, `PRAGMA max_page_count = 4294967294`, sqlite3.SQLITE_FULL, "full"},
		{"read-only", `PRAGMA query_only = ON`, `PRAGMA query_only = OFF`, sqlite3.SQLITE_READONLY, "readonly"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s, _ := openTemp(t)
			if err := s.CreateDevice(ctx, store.Device{ID: "dev-1", Hostname: "pc-1"}); err != nil {
				t.Fatal(err)
			}
			before := makeSamples(0, 200, time.Unix(1_800_000_000, 0), 64)
			if n, err := s.AddHealthSamples(ctx, "dev-1", before); err != nil || n != len(before) {
				t.Fatalf("AddHealthSamples = %d, %v", n, err)
			}

			fail := tc.fail
			if strings.Contains(fail, "%d") {
				var pages int
				if err := s.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
					t.Fatal(err)
				}
				fail = fmt.Sprintf(fail, pages)
			}
			if _, err := s.w.ExecContext(ctx, fail); err != nil {
				t.Fatalf("%s: %v", fail, err)
			}

			// A large batch: it cannot fit in the pages the file has left.
			batch := makeSamples(1000, 2000, time.Unix(1_800_001_000, 0), 4096)
			n, err := s.AddHealthSamples(ctx, "dev-1", batch)
			if err == nil {
				t.Fatalf("AddHealthSamples succeeded (%d) on a %s database", n, tc.name)
			}
			if n != 0 {
				t.Errorf("failed AddHealthSamples reported %d new samples", n)
			}
			if sqliteCode(err)&0xff != tc.wantCode {
				t.Errorf("error %v has code %d, want %d", err, sqliteCode(err), tc.wantCode)
			}
			if !strings.Contains(strings.ReplaceAll(strings.ToLower(err.Error()), "-", ""), tc.wantText) {
				t.Errorf("error %q does not mention %q", err, tc.wantText)
			}
			if !strings.HasPrefix(err.Error(), "sqlite: add health samples") {
				t.Errorf("error %q lacks context", err)
			}
			var se *sqlite.Error
			if !errors.As(err, &se) {
				t.Errorf("error %v does not wrap *sqlite.Error", err)
			}

			// Everything stored before is readable, and none of the batch is.
			checkStored := func(want []store.HealthSample) {
				t.Helper()
				pts, err := s.HealthRange(ctx, "dev-1", time.Unix(0, 1), time.Unix(1_900_000_000, 0))
				if err != nil {
					t.Fatalf("HealthRange: %v", err)
				}
				if len(pts) != len(want) {
					t.Fatalf("%d samples stored, want %d", len(pts), len(want))
				}
				for i, p := range pts {
					if !p.Time.Equal(want[i].Time) || p.CPUPercent != want[i].CPUPercent {
						t.Fatalf("sample %d = %+v, want %+v", i, p, want[i])
					}
				}
			}
			checkStored(before)
			latest, err := s.LatestHealth(ctx, "dev-1")
			if err != nil || latest.ID != before[len(before)-1].ID || len(latest.Detail) != 64 {
				t.Errorf("LatestHealth = %+v, %v", latest.ID, err)
			}

			// Once the cause is gone the store works again.
			if _, err := s.w.ExecContext(ctx, tc.restore); err != nil {
				t.Fatalf("%s: %v", tc.restore, err)
			}
			if n, err := s.AddHealthSamples(ctx, "dev-1", batch); err != nil || n != len(batch) {
				t.Fatalf("AddHealthSamples after recovery = %d, %v", n, err)
			}
			checkStored(append(before, batch...))
			if err := s.w.PingContext(ctx); err != nil {
				t.Fatal(err)
			}
			var check string
			if err := s.w.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
				t.Errorf("integrity_check = %q, %v", check, err)
			}
		})
	}
}

func TestCompactHealthBadWidth(t *testing.T) {
	s, _ := openTemp(t)
	if _, err := s.CompactHealth(t.Context(), time.Now(), 0, time.Time{}); err == nil {
		t.Errorf("CompactHealth with a zero bucket width succeeded")
	}
}

func TestContextCanceled(t *testing.T) {
	s, _ := openTemp(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.CreateDevice(ctx, store.Device{ID: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateDevice(canceled) = %v, want context.Canceled", err)
	}
	// The writer connection is still usable.
	if err := s.CreateDevice(t.Context(), store.Device{ID: "x"}); err != nil {
		t.Errorf("CreateDevice after a canceled call: %v", err)
	}
}

var makeSamples = storetest.Samples

// TestListDevicesPlans checks that every ordering, in both directions, is
// read from its index rather than sorted (sortTerms must match the index
// expressions in migrations/), and that filters do not steer SQLite away
// from the ordering's index.
func TestListDevicesPlans(t *testing.T) {
	s, _ := openTemp(t)
	insertFleet(t, s, 100)
	plan := func(query string, args []any) string {
		t.Helper()
		rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Fatalf("EXPLAIN QUERY PLAN %s: %v", query, err)
		}
		defer rows.Close()
		var steps []string
		for rows.Next() {
			var id, parent, notUsed int
			var detail string
			if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
				t.Fatal(err)
			}
			steps = append(steps, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(steps, "; ")
	}
	indexOf := map[store.DeviceSort]string{
		store.SortHostname: "devices_by_hostname",
		store.SortLastSeen: "devices_by_last_seen",
		store.SortOS:       "devices_by_os",
		store.SortModel:    "devices_by_model",
		store.SortCPU:      "devices_by_cpu",
		store.SortMemory:   "devices_by_memory",
		store.SortDiskFree: "devices_by_disk_free",
		store.SortUser:     "devices_by_user",
		store.SortOnline:   "devices_by_online",
	}
	if len(indexOf) != len(sortTerms) {
		t.Fatalf("test covers %d orderings, sortTerms has %d", len(indexOf), len(sortTerms))
	}
	filters := []store.DeviceFilter{
		{},
		{Online: ptr(true), Hostname: "pc", MemoryBelow: 8 << 30, DiskFreeBelowPercent: 10, Query: "x"},
		{Online: ptr(false), User: "a", Model: "b", OS: "c", MemoryBelow: 1 << 63, IncludeRevoked: true},
	}
	for sortBy, index := range indexOf {
		for _, desc := range []bool{false, true} {
			for _, f := range filters {
				f.Sort, f.Descending, f.Offset, f.Limit = sortBy, desc, 10, 50
				q, err := listQueries(f)
				if err != nil {
					t.Fatalf("listQueries(%+v): %v", f, err)
				}
				p := plan(q.page, q.pageArgs)
				if !strings.Contains(p, "USING INDEX "+index) || strings.Contains(p, "TEMP B-TREE") {
					t.Errorf("sort %s descending=%v filter %+v: plan %q, want a walk of %s", sortBy, desc, f, p, index)
				}
				if p := plan(q.pageScan, q.pageArgs); strings.Contains(p, "INDEX") {
					t.Errorf("sort %s: scan plan %q uses an index", sortBy, p)
				}
			}
		}
	}
	// Keyset paging seeks in the hostname index.
	q, err := listQueries(store.DeviceFilter{Online: ptr(true), AfterHostname: "pc-1", AfterID: "dev-1", Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if p := plan(q.page, q.pageArgs); !strings.Contains(p, "SEARCH devices USING INDEX devices_by_hostname (hostname>?)") {
		t.Errorf("keyset page plan %q does not seek in devices_by_hostname", p)
	}
}

// TestListDevicesPlansAgree checks that the two page plans ListDevices
// chooses between return the same devices in the same order.
func TestListDevicesPlansAgree(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	insertFleet(t, s, 300)
	ids := func(query string, args []any) []string {
		t.Helper()
		rows, err := s.r.QueryContext(ctx, query, args...)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			d, err := scanDevice(rows)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, d.ID)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	filters := []store.DeviceFilter{
		{},
		{Online: ptr(true)},
		{Query: "smith", MemoryBelow: 32 << 30},
		{DiskFreeBelowPercent: 30, Hostname: "lab"},
	}
	for sortBy := range sortTerms {
		for _, desc := range []bool{false, true} {
			for _, f := range filters {
				for _, p := range [][2]int{{0, 0}, {0, 20}, {35, 20}} {
					f.Sort, f.Descending, f.Offset, f.Limit = sortBy, desc, p[0], p[1]
					q, err := listQueries(f)
					if err != nil {
						t.Fatal(err)
					}
					walk, scan := ids(q.page, q.pageArgs), ids(q.pageScan, q.pageArgs)
					if !slices.Equal(walk, scan) {
						t.Errorf("%+v: index walk %v, scan %v", f, walk, scan)
					}
					if len(walk) == 0 && f.Offset == 0 {
						t.Errorf("%+v: no devices; the test needs matches", f)
					}
				}
			}
		}
	}
}

// TestListAuditPlans: each audit filter is answered from its index.
func TestListAuditPlans(t *testing.T) {
	s, _ := openTemp(t)
	for i := range 200 {
		if _, err := s.AppendAudit(t.Context(), store.AuditEvent{Time: time.Unix(int64(i), 0), Actor: fmt.Sprint("a", i%7), Action: fmt.Sprint("x.", i%5), Target: fmt.Sprint("d", i%11)}, store.AuditHash); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.w.ExecContext(t.Context(), "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f     store.AuditFilter
		index string
	}{
		{store.AuditFilter{Actor: "a1", Limit: 50}, "audit_log_by_actor"},
		{store.AuditFilter{Target: "d1", Limit: 50, Before: 100}, "audit_log_by_target"},
		{store.AuditFilter{Action: "x.1", Limit: 50}, "audit_log_by_action"},
		{store.AuditFilter{Action: "x.*", Limit: 50}, "audit_log_by_action"},
		{store.AuditFilter{Since: time.Unix(150, 0), Until: time.Unix(160, 0), Limit: 50}, "audit_log_by_time"},
	} {
		q, args := auditQuery(tc.f)
		rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var steps []string
		for rows.Next() {
			var id, parent, notUsed int
			var detail string
			if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
				t.Fatal(err)
			}
			steps = append(steps, detail)
		}
		rows.Close()
		if p := strings.Join(steps, "; "); !strings.Contains(p, tc.index) {
			t.Errorf("filter %+v: plan %q, want %s", tc.f, p, tc.index)
		}
	}
}
