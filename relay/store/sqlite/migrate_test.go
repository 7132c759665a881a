package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// TestHealthRawMigrationKeepsSamples fills health_raw at schema version
// 20 (two per-device indexes) and opens the store, which rebuilds it with
// one (migration 21): every sample is still there, in order, and one sent
// again is still recognised as stored.
func TestHealthRawMigrationKeepsSamples(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "relay.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:20] {
		if err := applyMigration(ctx, db, m); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
	}
	base := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	if _, err := db.ExecContext(ctx, `INSERT INTO devices (id, hostname) VALUES ('dev-1', 'ws-1'), ('dev-2', 'ws-2')`); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		for _, dev := range []string{"dev-1", "dev-2"} {
			if _, err := db.ExecContext(ctx, `INSERT INTO health_raw (device_id, id, time, cpu_percent, load1, mem_used, mem_avail, swap_used,
				disk_used_pct, net_rx_bps, net_tx_bps, detail) VALUES (?, ?, ?, ?, 0, 0, 0, 0, 0, 0, 0, x'0a00')`,
				dev, 100+i, store.Nanos(base.Add(time.Duration(i)*time.Minute)), float64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open (migrating to %d): %v", latestVersion(), err)
	}
	defer s.Close()
	pts, err := s.HealthRange(ctx, "dev-1", base, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 5 {
		t.Fatalf("dev-1 has %d samples after the migration, want 5", len(pts))
	}
	for i, p := range pts {
		if !p.Time.Equal(base.Add(time.Duration(i)*time.Minute)) || p.CPUPercent != float64(i) {
			t.Errorf("sample %d after the migration = %v at %v, want cpu %d at %v", i, p.CPUPercent, p.Time, i, base.Add(time.Duration(i)*time.Minute))
		}
	}
	latest, err := s.LatestHealth(ctx, "dev-2")
	if err != nil || latest.ID != 104 {
		t.Errorf("LatestHealth(dev-2) = id %d, %v; want 104", latest.ID, err)
	}
	again := store.HealthSample{ID: 102, Time: base.Add(2 * time.Minute), CPUPercent: 2}
	n, err := s.AddHealthSamples(ctx, "dev-1", []store.HealthSample{again, {ID: 105, Time: base.Add(5 * time.Minute)}})
	if err != nil || n != 1 {
		t.Errorf("AddHealthSamples(one stored before the migration, one new) = %d, %v; want 1 new", n, err)
	}
}
