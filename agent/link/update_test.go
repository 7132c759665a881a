package link

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/update"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

// TestUpdateOverTheStream offers releases over the agent's stream and
// sends the executable in chunks, with the real updater installing it.
func TestUpdateOverTheStream(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "agent")
	os.WriteFile(exe, []byte("old build"), 0o755)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if err := update.Pin(dir, envelope.Fingerprint(key.Public().(ed25519.PublicKey))); err != nil {
		t.Fatal(err)
	}
	u := &update.Updater{Dir: dir, Exe: exe, Version: "v1.0.0"}
	var restarted atomic.Int32
	h := newHarness(t, func(c *Config) {
		c.Updates = u
		c.OnUpdateInstalled = func() { restarted.Add(1) }
		c.LastUpdate = func() *desksidev1.UpdateStatus {
			return &desksidev1.UpdateStatus{Version: "v0.9.0", State: desksidev1.UpdateState_UPDATE_STATE_ROLLED_BACK}
		}
	})
	rs := h.stream()
	if hello := rs.welcome(t, &desksidev1.Welcome{DeviceId: "dev-test"}); hello.GetLastUpdate().GetState() != desksidev1.UpdateState_UPDATE_STATE_ROLLED_BACK {
		t.Errorf("Hello.last_update = %v", hello.GetLastUpdate())
	}
	rs.ack(t, rs.next(t).GetId(), &desksidev1.Ack{Accepted: true}) // inventory

	newBuild := bytes.Repeat([]byte("new build "), 300_000) // 3 MB: several chunks
	release := func(k ed25519.PrivateKey, exe []byte, v string) *desksidev1.SignedRelease {
		r, err := envelope.SignRelease(k, envelope.ReleaseManifestFor(exe, v, runtime.GOOS, runtime.GOARCH), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	id := uint64(100)
	offer := func(r *desksidev1.SignedRelease) *desksidev1.UpdateStatus {
		t.Helper()
		id++
		rs.send(t, &desksidev1.RelayMessage{Id: id, Body: &desksidev1.RelayMessage_UpdateOffer{UpdateOffer: &desksidev1.UpdateOffer{Release: r}}})
		m := rs.next(t)
		if m.GetRefId() != id || m.GetUpdateStatus() == nil {
			t.Fatalf("answer to the offer: %v", m)
		}
		return m.GetUpdateStatus()
	}
	chunk := func(ref, off uint64, b []byte) {
		rs.send(t, &desksidev1.RelayMessage{RefId: ref, Body: &desksidev1.RelayMessage_UpdateChunk{UpdateChunk: &desksidev1.UpdateChunk{Offset: off, Data: b}}})
	}
	downloading := func(r *desksidev1.SignedRelease) uint64 {
		t.Helper()
		id++
		rs.send(t, &desksidev1.RelayMessage{Id: id, Body: &desksidev1.RelayMessage_UpdateOffer{UpdateOffer: &desksidev1.UpdateOffer{Release: r}}})
		m := rs.next(t)
		if m.GetUpdateStatus().GetState() != desksidev1.UpdateState_UPDATE_STATE_DOWNLOADING {
			t.Fatalf("offer: %v", m)
		}
		return m.GetId()
	}
	final := func() *desksidev1.UpdateStatus {
		t.Helper()
		m := rs.next(t)
		if m.GetRefId() != id {
			t.Errorf("final status answers %d, want the offer %d", m.GetRefId(), id)
		}
		return m.GetUpdateStatus()
	}
	unchanged := func() {
		t.Helper()
		if b, _ := os.ReadFile(exe); string(b) != "old build" {
			t.Fatalf("the executable changed: %d bytes", len(b))
		}
	}

	for name, r := range map[string]*desksidev1.SignedRelease{
		"another key": release(other, newBuild, "v1.1.0"),
		"downgrade":   release(key, newBuild, "v0.9.0"),
	} {
		if st := offer(r); st.GetState() != desksidev1.UpdateState_UPDATE_STATE_REFUSED {
			t.Errorf("%s: %v", name, st)
		}
	}

	// Out of order: failed, nothing swapped.
	ref := downloading(release(key, newBuild, "v1.1.0"))
	chunk(ref, 5, newBuild[:10])
	if st := final(); st.GetState() != desksidev1.UpdateState_UPDATE_STATE_FAILED {
		t.Errorf("out of order: %v", st)
	}
	unchanged()

	// Bytes other than the signed ones: failed at the end.
	evil := bytes.Clone(newBuild)
	evil[len(evil)-1] ^= 1
	ref = downloading(release(key, newBuild, "v1.1.0"))
	chunk(ref, 0, evil)
	if st := final(); st.GetState() != desksidev1.UpdateState_UPDATE_STATE_FAILED {
		t.Errorf("other bytes: %v", st)
	}
	unchanged()

	// The stream drops mid-download: the partial file goes.
	ref = downloading(release(key, newBuild, "v1.1.0"))
	chunk(ref, 0, newBuild[:100])
	rs.end <- errors.New("relay restarting")
	rs = h.stream()
	rs.welcome(t, &desksidev1.Welcome{DeviceId: "dev-test"})
	rs.ack(t, rs.next(t).GetId(), &desksidev1.Ack{Accepted: true}) // inventory
	if _, err := os.Stat(exe + ".next"); !os.IsNotExist(err) {
		t.Fatalf("partial download left behind: %v", err)
	}
	unchanged()

	// The real thing, in chunks.
	ref = downloading(release(key, newBuild, "v1.1.0"))
	for off := 0; off < len(newBuild); off += MaxUpdateChunk {
		chunk(ref, uint64(off), newBuild[off:min(off+MaxUpdateChunk, len(newBuild))])
	}
	if st := final(); st.GetState() != desksidev1.UpdateState_UPDATE_STATE_INSTALLED || st.GetVersion() != "v1.1.0" {
		t.Fatalf("install: %v", st)
	}
	if b, _ := os.ReadFile(exe); !bytes.Equal(b, newBuild) || restarted.Load() != 1 {
		t.Fatalf("after install: %d bytes, %d restarts", len(b), restarted.Load())
	}
	if b, _ := os.ReadFile(exe + update.PreviousExt); string(b) != "old build" {
		t.Fatal("previous build not kept")
	}
}
