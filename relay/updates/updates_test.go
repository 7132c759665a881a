package updates_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/sqlite"
	"github.com/deskside/deskside/relay/updates"
)

func TestUploadRolloutOffer(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u := updates.New(st, nil)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	exe := []byte("agent v1.1.0")
	r, _ := envelope.SignRelease(key, envelope.ReleaseManifestFor(exe, "v1.1.0", "linux", "amd64"), time.Now())

	if _, err := u.Upload(ctx, r, []byte("other bytes")); !errors.Is(err, updates.ErrInvalid) {
		t.Fatalf("upload of other bytes: %v", err)
	}
	bad := &desksidev1.SignedRelease{Manifest: r.Manifest, Signature: make([]byte, 64)}
	if _, err := u.Upload(ctx, bad, exe); !errors.Is(err, updates.ErrInvalid) {
		t.Fatalf("upload with a bad signature: %v", err)
	}
	if err := u.SetRollout(ctx, updates.Rollout{Version: "v1.1.0", OS: "linux", Arch: "amd64", Percent: 10}); !errors.Is(err, updates.ErrNotFound) {
		t.Fatalf("rollout before upload: %v", err)
	}
	if _, err := u.Upload(ctx, r, exe); err != nil {
		t.Fatal(err)
	}
	if err := u.SetRollout(ctx, updates.Rollout{Version: "v1.1.0", OS: "linux", Arch: "amd64", Percent: 10}); err != nil {
		t.Fatal(err)
	}

	offered := func() map[string]bool {
		out := map[string]bool{}
		for i := range 1000 {
			d := updates.Device{ID: fmt.Sprintf("dev-%04d", i), Version: "v1.0.0", OS: "linux", Arch: "amd64"}
			rel, b, err := u.Offer(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			if rel != nil {
				if string(b) != string(exe) {
					t.Fatal("offered other bytes")
				}
				out[d.ID] = true
			}
		}
		return out
	}
	ten := offered()
	if n := len(ten); n < 70 || n > 130 {
		t.Fatalf("10%% of 1000 devices: %d offered", n)
	}
	u.SetRollout(ctx, updates.Rollout{Version: "v1.1.0", OS: "linux", Arch: "amd64", Percent: 50})
	half := offered()
	for id := range ten {
		if !half[id] {
			t.Fatalf("%s was in the 10%% and is not in the 50%%", id)
		}
	}
	u.SetRollout(ctx, updates.Rollout{Version: "v1.1.0", OS: "linux", Arch: "amd64", Percent: 100})
	if n := len(offered()); n != 1000 {
		t.Fatalf("100%%: %d offered", n)
	}

	// Not offered: another platform, already newer, or refused before.
	for _, d := range []updates.Device{
		{ID: "a", Version: "v1.0.0", OS: "windows", Arch: "amd64"},
		{ID: "b", Version: "v1.1.0", OS: "linux", Arch: "amd64"},
	} {
		if rel, _, _ := u.Offer(ctx, d); rel != nil {
			t.Errorf("offered to %+v", d)
		}
	}
	for _, id := range []string{"c", "d", "f"} {
		if err := st.CreateDevice(ctx, store.Device{ID: id, Hostname: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.Record(ctx, "c", &desksidev1.UpdateStatus{Version: "v1.1.0", State: desksidev1.UpdateState_UPDATE_STATE_REFUSED, Reason: strings.Repeat("x\x1b", 500)}); err != nil {
		t.Fatal(err)
	}
	if err := u.Record(ctx, "unknown", &desksidev1.UpdateStatus{Version: "v1.1.0", State: desksidev1.UpdateState_UPDATE_STATE_REFUSED}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("state of an unknown device: %v", err)
	}
	// A refusal (no pin yet, say) does not stop the next offer; a failed
	// download or a rollback does.
	if rel, _, _ := u.Offer(ctx, updates.Device{ID: "c", Version: "v1.0.0", OS: "linux", Arch: "amd64"}); rel == nil {
		t.Error("not offered again after a refusal")
	}
	for _, failed := range []desksidev1.UpdateState{desksidev1.UpdateState_UPDATE_STATE_FAILED, desksidev1.UpdateState_UPDATE_STATE_ROLLED_BACK} {
		if err := u.Record(ctx, "f", &desksidev1.UpdateStatus{Version: "v1.1.0", State: failed}); err != nil {
			t.Fatal(err)
		}
		if rel, _, _ := u.Offer(ctx, updates.Device{ID: "f", Version: "v1.0.0", OS: "linux", Arch: "amd64"}); rel != nil {
			t.Errorf("offered again after %v", failed)
		}
	}
	if s, _, _ := u.State(ctx, "c"); len(s.Reason) > 200*4 || strings.Contains(s.Reason, "\x1b") {
		t.Errorf("reason kept as sent: %q", s.Reason)
	}

	// Group rollout.
	u.SetRollout(ctx, updates.Rollout{Version: "v1.1.0", OS: "linux", Arch: "amd64", Group: "pilot"})
	if rel, _, _ := u.Offer(ctx, updates.Device{ID: "d", Version: "v1.0.0", OS: "linux", Arch: "amd64", Group: "pilot"}); rel == nil {
		t.Error("pilot device not offered")
	}
	if rel, _, _ := u.Offer(ctx, updates.Device{ID: "e", Version: "v1.0.0", OS: "linux", Arch: "amd64", Group: "sales"}); rel != nil {
		t.Error("device outside the group offered")
	}

	// State survives a new Updates on the same store; progress counts it.
	if err := u.Record(ctx, "d", &desksidev1.UpdateStatus{Version: "v1.1.0", State: desksidev1.UpdateState_UPDATE_STATE_INSTALLED}); err != nil {
		t.Fatal(err)
	}
	p, err := updates.New(st, nil).Progress(ctx, "v1.1.0")
	if err != nil || p[desksidev1.UpdateState_UPDATE_STATE_INSTALLED] != 1 || p[desksidev1.UpdateState_UPDATE_STATE_REFUSED] != 1 {
		t.Fatalf("progress %v %v", p, err)
	}
}

// TestStatesMovedFromSetting starts on a store where an earlier version
// kept every device's state in the settings record updates.states: the
// first use moves them into the table, keeps a newer row, leaves out
// devices no longer known and empties the record.
func TestStatesMovedFromSetting(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, id := range []string{"dev-1", "dev-2", "dev-3"} {
		if err := st.CreateDevice(ctx, store.Device{ID: id, Hostname: id}); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	// dev-3 was written to the table since (by a relay that moved the
	// states already): its row is newer than the record.
	newer := store.UpdateState{DeviceID: "dev-3", Version: "v1.2.0", State: int(desksidev1.UpdateState_UPDATE_STATE_DOWNLOADING), At: at.Add(time.Hour)}
	if err := st.PutUpdateState(ctx, newer); err != nil {
		t.Fatal(err)
	}
	old := `{"dev-1":{"version":"v1.1.0","state":3,"at":"2026-12-01T10:00:00.123456789Z"},
		"dev-2":{"version":"v1.1.0","state":1,"reason":"not pinned","at":"2026-12-01T10:00:00.123456789Z"},
		"dev-3":{"version":"v1.1.0","state":3,"at":"2026-12-01T10:00:00.123456789Z"},
		"gone":{"version":"v1.1.0","state":3,"at":"2026-12-01T10:00:00.123456789Z"}}`
	if err := st.PutRelaySetting(ctx, "updates.states", []byte(old)); err != nil {
		t.Fatal(err)
	}
	u := updates.New(st, nil)
	p, err := u.Progress(ctx, "v1.1.0")
	if err != nil || p[desksidev1.UpdateState_UPDATE_STATE_INSTALLED] != 1 || p[desksidev1.UpdateState_UPDATE_STATE_REFUSED] != 1 || len(p) != 2 {
		t.Fatalf("progress after the move: %v %v", p, err)
	}
	s, ok, err := u.State(ctx, "dev-2")
	if err != nil || !ok || s.Version != "v1.1.0" || s.State != desksidev1.UpdateState_UPDATE_STATE_REFUSED || s.Reason != "not pinned" || !s.At.Equal(at) {
		t.Fatalf("dev-2: %+v %v %v", s, ok, err)
	}
	if s, _, _ := u.State(ctx, "dev-3"); s.Version != "v1.2.0" || !s.At.Equal(newer.At) {
		t.Fatalf("dev-3's newer row replaced by the record: %+v", s)
	}
	if b, err := st.GetRelaySetting(ctx, "updates.states"); err != nil || len(b) != 0 {
		t.Fatalf("the record is still there: %q %v", b, err)
	}
	all, err := u.States(ctx)
	if err != nil || len(all) != 3 || all["dev-1"].State != desksidev1.UpdateState_UPDATE_STATE_INSTALLED {
		t.Fatalf("states: %v %v", all, err)
	}
	// Paging: two, then the rest after the last id.
	page, err := u.ListStates(ctx, "", 2)
	if err != nil || len(page) != 2 || page[0].DeviceID != "dev-1" || page[1].DeviceID != "dev-2" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	if page, err = u.ListStates(ctx, page[1].DeviceID, 2); err != nil || len(page) != 1 || page[0].DeviceID != "dev-3" {
		t.Fatalf("second page: %+v %v", page, err)
	}
	// A relay of this version starting later finds nothing to move.
	if err := u.Record(ctx, "dev-1", &desksidev1.UpdateStatus{Version: "v1.2.0", State: desksidev1.UpdateState_UPDATE_STATE_DOWNLOADING}); err != nil {
		t.Fatal(err)
	}
	if s, _, err := updates.New(st, nil).State(ctx, "dev-1"); err != nil || s.Version != "v1.2.0" {
		t.Fatalf("dev-1 after a later report: %+v %v", s, err)
	}
}

// TestTwoRelaysRecord has two relays (two Updates on one store) record
// different devices in turns: neither loses the other's states.
func TestTwoRelaysRecord(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	relays := []*updates.Updates{updates.New(st, nil), updates.New(st, nil)}
	const n = 20
	for i := range n {
		id := fmt.Sprintf("dev-%02d", i)
		if err := st.CreateDevice(ctx, store.Device{ID: id, Hostname: id}); err != nil {
			t.Fatal(err)
		}
		// Each relay reads before it writes, as offers do.
		u := relays[i%2]
		if _, _, err := u.State(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := u.Record(ctx, id, &desksidev1.UpdateStatus{Version: "v1.1.0", State: desksidev1.UpdateState_UPDATE_STATE_INSTALLED}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range relays {
		p, err := u.Progress(ctx, "v1.1.0")
		if err != nil || p[desksidev1.UpdateState_UPDATE_STATE_INSTALLED] != n {
			t.Fatalf("progress %v %v, want %d installed", p, err, n)
		}
	}
	// The same device on both: the last report wins.
	relays[0].Record(ctx, "dev-00", &desksidev1.UpdateStatus{Version: "v1.2.0", State: desksidev1.UpdateState_UPDATE_STATE_DOWNLOADING})
	relays[1].Record(ctx, "dev-00", &desksidev1.UpdateStatus{Version: "v1.2.0", State: desksidev1.UpdateState_UPDATE_STATE_FAILED, Reason: "disk full"})
	if s, _, _ := relays[0].State(ctx, "dev-00"); s.State != desksidev1.UpdateState_UPDATE_STATE_FAILED || s.Reason != "disk full" {
		t.Fatalf("dev-00: %+v", s)
	}
}
