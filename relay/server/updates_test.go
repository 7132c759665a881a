package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/update"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/updates"
)

// TestStagedRollout runs 30 real agent links, each with the real
// updater on its own executable file, and rolls a release out to 10 %
// then to all: only the devices of the 10 % buckets are updated first.
func TestStagedRollout(t *testing.T) {
	ctx := context.Background()
	r := servertest.Start(t, servertest.Options{})
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	pin := envelope.Fingerprint(key.Public().(ed25519.PublicKey))
	newExe := bytes.Repeat([]byte("agent v1.1.0 "), 100_000) // 1.3 MB: several chunks
	rel, err := envelope.SignRelease(key, envelope.ReleaseManifestFor(newExe, "v1.1.0", runtime.GOOS, runtime.GOARCH), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Srv.Updates().Upload(ctx, rel, newExe); err != nil {
		t.Fatal(err)
	}

	// At least 30 agents, and at least one in the 10 % buckets (each
	// device is there with a chance of 1 in 10).
	type agent struct {
		id, exe   string
		installed atomic.Bool
	}
	var agents []*agent
	for ten := 0; len(agents) < 30 || ten == 0; {
		if len(agents) == 200 {
			t.Fatal("200 devices and none in the 10 % buckets: the buckets are not uniform")
		}
		st := r.Enroll(t, fmt.Sprintf("host-%d", len(agents)))
		a := &agent{id: st.DeviceID, exe: filepath.Join(st.Dir, "deskside-agent")}
		if updates.Bucket(a.id) < 1000 {
			ten++
		}
		os.WriteFile(a.exe, []byte("agent v1.0.0"), 0o755)
		if err := update.Pin(st.Dir, pin); err != nil {
			t.Fatal(err)
		}
		servertest.RunAgent(t, st, servertest.AgentOptions{
			Inventory: &fakeInventory{inv: sampleInventory()}, Health: fakeSampler{}, HealthInterval: time.Hour,
			Version: "v1.0.0", Updates: &update.Updater{Dir: st.Dir, Exe: a.exe, Version: "v1.0.0"},
			OnUpdateInstalled: func() { a.installed.Store(true) },
		})
		agents = append(agents, a)
	}
	n := len(agents)
	admin, actx := r.Admin(t)
	servertest.AwaitOnline(t, admin, actx, n, 30*time.Second)

	check := func(want func(a *agent) bool) {
		t.Helper()
		servertest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
			for _, a := range agents {
				b, _ := os.ReadFile(a.exe)
				if got := bytes.Equal(b, newExe); got != want(a) || a.installed.Load() != want(a) {
					return fmt.Errorf("device %s (bucket %d): updated %v, want %v", a.id, updates.Bucket(a.id), got, want(a))
				}
			}
			return nil
		})
	}
	inTen := func(a *agent) bool { return updates.Bucket(a.id) < 1000 }
	if err := r.Srv.StartRollout(ctx, updates.Rollout{Version: "v1.1.0", OS: runtime.GOOS, Arch: runtime.GOARCH, Percent: 10}); err != nil {
		t.Fatal(err)
	}
	check(inTen)
	// Nothing else changes while the 10 % stage lasts.
	time.Sleep(300 * time.Millisecond)
	check(inTen)
	p, err := r.Srv.Updates().Progress(ctx, "v1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	ten := 0
	for _, a := range agents {
		if inTen(a) {
			ten++
		}
	}
	if p[desksidev1.UpdateState_UPDATE_STATE_INSTALLED] != ten {
		t.Fatalf("progress %v, want %d installed", p, ten)
	}
	if err := r.Srv.StartRollout(ctx, updates.Rollout{Version: "v1.1.0", OS: runtime.GOOS, Arch: runtime.GOARCH, Percent: 100}); err != nil {
		t.Fatal(err)
	}
	check(func(*agent) bool { return true })
}
