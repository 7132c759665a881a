package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/service"
	"github.com/deskside/deskside/relay/store"
)

// sampler is the agents' health and inventory source: a plain sample
// every call (the agent's link stamps ids and spools it, as in
// production), and a small inventory.
type sampler struct{}

func (sampler) Read(context.Context) (*desksidev1.Inventory, error) {
	return &desksidev1.Inventory{
		Hostname: "backup-test", CollectedAt: timestamppb.Now(),
		Os: &desksidev1.OperatingSystem{Name: "debian", Version: "12", Kernel: "6.1.0", Arch: "x86_64"},
	}, nil
}

func (sampler) Sample(context.Context) (*desksidev1.HealthSample, error) {
	return &desksidev1.HealthSample{
		Time: timestamppb.Now(), CpuPercent: 12.5, Load1: 0.5, MemUsedBytes: 4 << 30, MemAvailableBytes: 12 << 30,
		MemTotalBytes: 16 << 30, Mounts: []*desksidev1.MountUsage{{Mountpoint: "/", UsedPercent: 40}},
	}, nil
}

// acked returns the ids of the samples agent a has had acknowledged:
// every id it issued that is no longer in its spool (nothing is dropped in
// these tests; the spool's bound is a week). Issued is read before the
// spool, so an id counted here was acknowledged before acked returned.
func acked(t *testing.T, a *servertest.Agent) map[uint64]bool {
	t.Helper()
	issued := a.Spool.Issued()
	pending, err := a.Spool.Peek(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	waiting := map[uint64]bool{}
	for _, s := range pending {
		waiting[s.GetId()] = true
	}
	out := map[uint64]bool{}
	for id := uint64(1); id <= issued; id++ {
		if !waiting[id] {
			out[id] = true
		}
	}
	return out
}

// samples reads the (device → sample ids) of the raw health table of the
// SQLite database at path, read-only, and the device ids.
func samples(t *testing.T, path string) (map[string]map[uint64]bool, []string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]map[uint64]bool{}
	rows, err := db.Query(`SELECT device_id, id FROM health_raw`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var dev string
		var id int64
		if err := rows.Scan(&dev, &id); err != nil {
			t.Fatal(err)
		}
		if out[dev] == nil {
			out[dev] = map[uint64]bool{}
		}
		out[dev][uint64(id)] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var devs []string
	rows, err = db.Query(`SELECT id FROM devices ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		devs = append(devs, id)
	}
	return out, devs
}

// TestBackupRestoreUnderLoad backs up a running SQLite relay while real
// agents stream health to it over mTLS, stops it, restores the encrypted
// archive into a fresh data directory and starts a relay there on the same
// address. The agents reconnect with the certificates they enrolled with
// (same device ids, no new devices), and:
//
//   - every sample an agent had had acknowledged before the backup began
//     is in the restored database (the snapshot point is after that);
//   - every sample an agent had acknowledged by the end is in the new
//     relay's database, except the ones the old relay acknowledged after
//     the snapshot: those were in the old database only, the agent had
//     deleted them from its spool, and they are gone. The test counts
//     them (docs/adr/0030-backup-and-restore.md).
func TestBackupRestoreUnderLoad(t *testing.T) {
	testkit.Heavy(t, "runs two relays and eight agents streaming health")
	const n = 8
	const every = 100 * time.Millisecond
	fast := func(c *server.Config) { c.HealthInterval = every }
	old := servertest.Start(t, servertest.Options{Modify: fast})
	agents := make([]*servertest.Agent, n)
	devices := make([]string, n)
	for i := range n {
		host := fmt.Sprintf("host-%d", i)
		st := old.Enroll(t, host)
		devices[i] = st.DeviceID
		agents[i] = servertest.RunAgent(t, st, servertest.AgentOptions{Inventory: sampler{}, Health: sampler{}, HealthInterval: every, Hostname: host})
	}
	servertest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		for i, a := range agents {
			if got := len(acked(t, a)); got < 20 {
				return fmt.Errorf("agent %d: %d samples acknowledged", i, got)
			}
		}
		return nil
	})

	before := make([]map[uint64]bool, n)
	for i, a := range agents {
		before[i] = acked(t, a)
	}
	archive := filepath.Join(t.TempDir(), "relay.tar.gz.age")
	const pass = "the correct passphrase"
	start := time.Now()
	res, err := Create(t.Context(), Options{DataDir: old.Dir, Output: archive, Passphrase: pass, ScryptWorkFactor: 12, RelayVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backup under load: %s, %d bytes, schema %d, files %v", time.Since(start).Round(time.Millisecond), res.Size, res.Manifest.SchemaVersion, res.Manifest.Files)
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive: %v, mode %v; want 0600", err, fi.Mode())
	}
	// Keep the load on for a while after the snapshot: these samples are
	// acknowledged by the old relay and are not in the archive.
	time.Sleep(time.Second)
	old.Stop()
	oldSamples, oldDevices := samples(t, filepath.Join(old.Dir, service.SQLiteFile))

	fresh := filepath.Join(t.TempDir(), "data")
	if _, err := Restore(t.Context(), RestoreOptions{Archive: archive, DataDir: fresh, Passphrase: "not the passphrase"}); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("restore with a wrong passphrase: %v, want ErrPassphrase", err)
	}
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused restore left %s behind (%v)", fresh, err)
	}
	if _, err := Restore(t.Context(), RestoreOptions{Archive: archive, DataDir: fresh}); !errors.Is(err, ErrEncrypted) {
		t.Fatalf("restore without a passphrase: %v, want ErrEncrypted", err)
	}
	m, err := Restore(t.Context(), RestoreOptions{Archive: archive, DataDir: fresh, Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	checkModes(t, fresh, m)
	restored, restoredDevices := samples(t, filepath.Join(fresh, service.SQLiteFile))
	if fmt.Sprint(restoredDevices) != fmt.Sprint(oldDevices) {
		t.Fatalf("restored devices %v, old relay had %v", restoredDevices, oldDevices)
	}
	for i, dev := range devices {
		for id := range before[i] {
			if !restored[dev][id] {
				t.Errorf("device %s: sample %d was acknowledged before the backup and is not in the restored database", dev, id)
			}
		}
	}
	if _, err := Restore(t.Context(), RestoreOptions{Archive: archive, DataDir: fresh, Passphrase: pass}); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("restore into a restored directory: %v, want ErrNotEmpty", err)
	}

	// A new relay on the restored directory, at the old address.
	var atStop []uint64
	for _, a := range agents {
		atStop = append(atStop, a.Spool.Issued())
	}
	next := servertest.Start(t, servertest.Options{Modify: func(c *server.Config) {
		fast(c)
		c.DataDir, c.Listen = fresh, old.Addr
	}})
	servertest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		for i, dev := range devices {
			h, err := next.Srv.Store().LatestHealth(t.Context(), dev)
			if err != nil {
				return fmt.Errorf("device %s: %v", dev, err)
			}
			if h.ID <= atStop[i] {
				return fmt.Errorf("device %s: newest sample %d, not yet one sampled after the old relay stopped (%d)", dev, h.ID, atStop[i])
			}
		}
		return nil
	})
	if _, total, err := next.Srv.Store().ListDevices(t.Context(), store.DeviceFilter{}); err != nil || total != n {
		t.Fatalf("restored relay lists %d devices (%v), want the %d enrolled ones", total, err, n)
	}
	after := make([]map[uint64]bool, n)
	for i, a := range agents {
		after[i] = acked(t, a)
		a.Stop()
	}
	next.Stop()
	final, _ := samples(t, filepath.Join(fresh, service.SQLiteFile))
	gone := 0
	for i, dev := range devices {
		for id := range after[i] {
			switch {
			case final[dev][id]:
			case oldSamples[dev][id] && !restored[dev][id]:
				gone++ // acknowledged after the snapshot by the old relay
			default:
				t.Errorf("device %s: sample %d was acknowledged and is in neither database", dev, id)
			}
		}
	}
	t.Logf("samples acknowledged by the old relay after the snapshot, lost with it: %d (of %d it stored)", gone, count(oldSamples))
	if gone == 0 {
		t.Error("no sample was acknowledged after the snapshot: the test did not keep the load on after the backup")
	}
}

func count(m map[string]map[uint64]bool) int {
	n := 0
	for _, ids := range m {
		n += len(ids)
	}
	return n
}

// checkModes checks that the restored directory is 0700 and each restored
// file 0600.
func checkModes(t *testing.T, dir string, m Manifest) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("restored directory: %v, mode %v; want 0700", err, fi.Mode())
	}
	for _, f := range m.Files {
		fi, err := os.Stat(filepath.Join(dir, f.Name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("restored %s: %v, mode %v; want 0600", f.Name, err, fi.Mode())
		}
	}
}
