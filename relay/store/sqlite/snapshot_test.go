package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// TestSnapshotWhileWriting copies a database with Snapshot while a writer
// keeps adding samples: the copy opens, is at this binary's schema, and
// holds at least every sample committed before Snapshot was called and no
// torn batch (batches are written in one transaction each).
func TestSnapshotWhileWriting(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	if err := s.CreateDevice(ctx, store.Device{ID: "d1", Hostname: "h", CertSerial: "1", FirstSeen: time.Now(), LastSeen: time.Now()}); err != nil {
		t.Fatal(err)
	}
	const batch = 50
	addBatch := func(n int) {
		t.Helper()
		var ss []store.HealthSample
		for i := range batch {
			ss = append(ss, store.HealthSample{ID: uint64(n*batch + i + 1), Time: time.Now(), CPUPercent: 1})
		}
		if _, err := s.AddHealthSamples(ctx, "d1", ss); err != nil {
			t.Error(err)
		}
	}
	for n := range 20 {
		addBatch(n)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 20; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			addBatch(n)
		}
	})
	dst := filepath.Join(t.TempDir(), "copy.db")
	v, err := Snapshot(ctx, path, dst)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if v != KnownSchemaVersion() || v == 0 {
		t.Fatalf("snapshot schema version %d, want %d", v, KnownSchemaVersion())
	}
	c, err := Open(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var n int
	if err := c.r.QueryRowContext(ctx, `SELECT count(*) FROM health_raw WHERE device_id = 'd1'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < 20*batch || n%batch != 0 {
		t.Fatalf("snapshot holds %d samples: want at least %d, in whole batches of %d", n, 20*batch, batch)
	}
	if _, err := Snapshot(ctx, path, dst); err == nil {
		t.Fatal("Snapshot over an existing file succeeded")
	}
}

func TestFileSchemaVersionRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte("this is not a database, only a text file that is long enough to look like one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := FileSchemaVersion(t.Context(), junk); err == nil {
		t.Fatal("FileSchemaVersion accepted a text file")
	}
	if _, err := FileSchemaVersion(t.Context(), filepath.Join(dir, "missing.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("FileSchemaVersion created the file")
	}
}
