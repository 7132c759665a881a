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
	u.Record(ctx, "c", &desksidev1.UpdateStatus{Version: "v1.1.0", State: desksidev1.UpdateState_UPDATE_STATE_REFUSED, Reason: strings.Repeat("x\x1b", 500)})
	if rel, _, _ := u.Offer(ctx, updates.Device{ID: "c", Version: "v1.0.0", OS: "linux", Arch: "amd64"}); rel != nil {
		t.Error("offered again after a refusal")
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
	u.Record(ctx, "d", &desksidev1.UpdateStatus{Version: "v1.1.0", State: desksidev1.UpdateState_UPDATE_STATE_INSTALLED})
	p, err := updates.New(st, nil).Progress(ctx, "v1.1.0")
	if err != nil || p[desksidev1.UpdateState_UPDATE_STATE_INSTALLED] != 1 || p[desksidev1.UpdateState_UPDATE_STATE_REFUSED] != 1 {
		t.Fatalf("progress %v %v", p, err)
	}
}
