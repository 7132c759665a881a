package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
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
	e, err := s.AppendAudit(ctx, store.AuditEvent{Time: d.FirstSeen, Actor: "a", Action: "b"})
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
		e2, err := s.AppendAudit(ctx, store.AuditEvent{Time: d.FirstSeen, Actor: "a", Action: fmt.Sprint(i)})
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
	if len(ms) == 0 || ms[0].name != "0001_init.sql" {
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

// makeSamples returns n samples with ids from firstID, one second apart
// from start, each with detail bytes of the given size.
func makeSamples(firstID uint64, n int, start time.Time, detail int) []store.HealthSample {
	out := make([]store.HealthSample, n)
	for i := range out {
		d := make([]byte, detail)
		for j := range d {
			d[j] = byte(i*31 + j*7)
		}
		out[i] = store.HealthSample{
			ID:              firstID + uint64(i),
			Time:            start.Add(time.Duration(i) * time.Second),
			CPUPercent:      float64(i%100) + 0.5,
			Load1:           float64(i%8) / 4,
			MemUsedBytes:    uint64(8<<30 + i*4096),
			MemAvailBytes:   uint64(8<<30 - i*4096),
			SwapUsedBytes:   uint64(i * 512),
			DiskUsedPercent: 71.25,
			NetRxBps:        float64(i * 1000),
			NetTxBps:        float64(i * 100),
			Detail:          d,
		}
	}
	return out
}
