package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/agent/update"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
)

// uploadRelease uploads exe and its signed manifest through UploadRelease
// as deskside release upload does.
func uploadRelease(ctx context.Context, c desksidev1.UpdateServiceClient, rel *desksidev1.SignedRelease, exe []byte) (*desksidev1.UploadReleaseResponse, error) {
	st, err := c.UploadRelease(ctx)
	if err != nil {
		return nil, err
	}
	first := &desksidev1.UploadReleaseRequest{Release: rel}
	if err := st.Send(first); err != nil {
		return nil, err
	}
	for off := 0; off < len(exe); off += 1 << 20 {
		if err := st.Send(&desksidev1.UploadReleaseRequest{Data: exe[off:min(off+1<<20, len(exe))]}); err != nil {
			return nil, err
		}
	}
	return st.CloseAndRecv()
}

// TestReleasesListAndProgress: the Releases page's RPCs against a real
// relay and real agent links with the real updater. ListReleases lists an
// upload with its hash, size, key and upload time; a dry run of a group
// rollout counts its devices by platform without starting it; once
// started, GetUpdates counts where the release stands on each selected
// device (installed, refused with the agent's reason, already current,
// waiting for an offline device) and names who started it. A tier-1
// technician is refused.
func TestReleasesListAndProgress(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	admin, actx := r.Admin(t)
	up := desksidev1.NewUpdateServiceClient(r.Dial(t))

	res, err := up.ListReleases(actx, &desksidev1.ListReleasesRequest{})
	if err != nil || len(res.GetReleases()) != 0 {
		t.Fatalf("releases before any upload: %v, %v", res, err)
	}
	_, err = up.StartRollout(actx, &desksidev1.StartRolloutRequest{Version: "v1.1.0", Os: runtime.GOOS, Arch: runtime.GOARCH, Group: "pilot", DryRun: true})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "deskside release upload") {
		t.Fatalf("dry run of a release not uploaded: %v", err)
	}

	_, key, _ := ed25519.GenerateKey(rand.Reader)
	pin := envelope.Fingerprint(key.Public().(ed25519.PublicKey))
	exe := bytes.Repeat([]byte("agent v1.1.0 "), 200_000) // 2.6 MB: three upload messages
	rel, err := envelope.SignRelease(key, envelope.ReleaseManifestFor(exe, "v1.1.0", runtime.GOOS, runtime.GOARCH), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	if _, err := uploadRelease(actx, up, rel, exe); err != nil {
		t.Fatal(err)
	}
	res, err = up.ListReleases(actx, &desksidev1.ListReleasesRequest{})
	if err != nil || len(res.GetReleases()) != 1 {
		t.Fatalf("releases after an upload: %v, %v", res, err)
	}
	got, sum := res.GetReleases()[0], sha256.Sum256(exe)
	if got.GetVersion() != "v1.1.0" || got.GetOs() != runtime.GOOS || got.GetArch() != runtime.GOARCH || got.GetSize() != uint64(len(exe)) ||
		!bytes.Equal(got.GetSha256(), sum[:]) || got.GetReleaseKeyFingerprint() != pin || got.GetUploadedAt().AsTime().Before(before) ||
		got.GetIssuedAt() == nil {
		t.Fatalf("listed release %v", got)
	}

	// The devices: in group pilot an agent that installs, one with no
	// release pin (it refuses), one already on v1.1.0, one that was
	// connected and is not any more, and one that never connected (its
	// platform is unknown); outside the group one more agent.
	type dev struct {
		name, version string
		pinned, stop  bool
		group         string
		noAgent       bool
	}
	devs := []dev{
		{name: "host-a", version: "v1.0.0", pinned: true, group: "pilot"},
		{name: "host-b", version: "v1.0.0", group: "pilot"},
		{name: "host-c", version: "v1.1.0", group: "pilot"},
		{name: "host-d", version: "v1.0.0", group: "pilot", stop: true},
		{name: "host-e", group: "pilot", noAgent: true},
		{name: "host-f", version: "v1.0.0", pinned: true},
	}
	ids := map[string]string{}
	var stops []*servertest.Agent
	for _, d := range devs {
		st := r.Enroll(t, d.name)
		ids[d.name] = st.DeviceID
		if d.group != "" {
			if _, err := admin.SetDeviceGroup(actx, &desksidev1.SetDeviceGroupRequest{DeviceId: st.DeviceID, Group: d.group}); err != nil {
				t.Fatal(err)
			}
		}
		if d.noAgent {
			continue
		}
		path := filepath.Join(st.Dir, "deskside-agent")
		os.WriteFile(path, []byte("agent "+d.version), 0o755)
		if d.pinned {
			if err := update.Pin(st.Dir, pin); err != nil {
				t.Fatal(err)
			}
		}
		a := servertest.RunAgent(t, st, servertest.AgentOptions{
			Inventory: &fakeInventory{inv: sampleInventory()}, Health: fakeSampler{}, HealthInterval: time.Hour,
			Hostname: d.name, Version: d.version, Updates: &update.Updater{Dir: st.Dir, Exe: path, Version: d.version},
		})
		if d.stop {
			stops = append(stops, a)
		}
	}
	servertest.AwaitOnline(t, admin, actx, 5, 30*time.Second)
	for _, a := range stops {
		a.Stop()
	}
	servertest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		d, err := admin.GetDevice(actx, &desksidev1.GetDeviceRequest{Id: ids["host-d"]})
		if err != nil || d.GetDevice().GetOnline() {
			return fmt.Errorf("host-d still online (%v)", err)
		}
		return nil
	})

	platform := func(p *desksidev1.RolloutProgress) string {
		var b strings.Builder
		for _, c := range p.GetSelected() {
			fmt.Fprintf(&b, "%s/%s=%d ", c.GetOs(), c.GetArch(), c.GetDevices())
		}
		return b.String()
	}
	wantPlatforms := fmt.Sprintf("/=1 %s/%s=4 ", runtime.GOOS, runtime.GOARCH)
	dry, err := up.StartRollout(actx, &desksidev1.StartRolloutRequest{Version: "v1.1.0", Os: runtime.GOOS, Arch: runtime.GOARCH, Group: "pilot", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if p := dry.GetScope(); platform(p) != wantPlatforms || p.GetInScope() != 4 || p.GetCurrent() != 1 || p.GetOffered() != 2 || p.GetWaiting() != 1 {
		t.Fatalf("dry run: %s %v", platform(p), p)
	}
	if u, err := up.GetUpdates(actx, &desksidev1.GetUpdatesRequest{}); err != nil || u.GetRollout() != nil || u.GetProgress() != nil || len(u.GetDevices()) != 0 {
		t.Fatalf("a dry run started something: %v, %v", u, err)
	}
	if evs, _ := r.Srv.Store().ListAudit(actx, store.AuditFilter{Action: "release.rollout"}); len(evs) != 0 {
		t.Fatalf("a dry run was audited: %v", evs)
	}
	if _, err := up.StartRollout(actx, &desksidev1.StartRolloutRequest{Version: "v1.1.0", Os: runtime.GOOS, Arch: runtime.GOARCH, Percent: 120, DryRun: true}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("dry run of 120 %%: %v", err)
	}

	if _, err := up.StartRollout(actx, &desksidev1.StartRolloutRequest{Version: "v1.1.0", Os: runtime.GOOS, Arch: runtime.GOARCH, Group: "pilot"}); err != nil {
		t.Fatal(err)
	}
	var last *desksidev1.GetUpdatesResponse
	servertest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		u, err := up.GetUpdates(actx, &desksidev1.GetUpdatesRequest{})
		if err != nil {
			return err
		}
		last = u
		p := u.GetProgress()
		if p.GetInstalled() != 1 || p.GetRefused() != 1 || p.GetCurrent() != 1 || p.GetWaiting() != 1 || p.GetOffered() != 0 || p.GetDownloading() != 0 {
			return fmt.Errorf("progress %v", p)
		}
		return nil
	})
	p := last.GetProgress()
	if last.GetStartedBy() != "admin" || platform(p) != wantPlatforms || p.GetInScope() != 4 || p.GetFailed() != 0 || p.GetRolledBack() != 0 {
		t.Fatalf("rollout: by %q, %s %v", last.GetStartedBy(), platform(p), p)
	}
	if len(p.GetFailures()) != 1 {
		t.Fatalf("failures %v", p.GetFailures())
	}
	f := p.GetFailures()[0]
	if f.GetDeviceId() != ids["host-b"] || f.GetHostname() != "host-b" || f.GetStatus().GetState() != desksidev1.UpdateState_UPDATE_STATE_REFUSED ||
		!strings.Contains(f.GetStatus().GetReason(), "pin") {
		t.Fatalf("failure %v", f)
	}

	// Device states come a page at a time; the Releases page asks for
	// none.
	all, err := up.GetUpdates(actx, &desksidev1.GetUpdatesRequest{})
	if err != nil || len(all.GetDevices()) < 2 || all.GetNextPageToken() != "" {
		t.Fatalf("one page of every state: %d states, next %q, %v", len(all.GetDevices()), all.GetNextPageToken(), err)
	}
	var paged []string
	for token, pages := "", 0; ; pages++ {
		pg, err := up.GetUpdates(actx, &desksidev1.GetUpdatesRequest{PageSize: 1, PageToken: token})
		if err != nil || len(pg.GetDevices()) > 1 || pages > len(all.GetDevices()) {
			t.Fatalf("page %d: %v %v", pages, pg, err)
		}
		for _, d := range pg.GetDevices() {
			paged = append(paged, d.GetDeviceId())
		}
		if token = pg.GetNextPageToken(); token == "" {
			break
		}
	}
	for i, d := range all.GetDevices() {
		if i >= len(paged) || paged[i] != d.GetDeviceId() {
			t.Fatalf("paged %v, all at once %v", paged, all.GetDevices())
		}
	}
	if u, err := up.GetUpdates(actx, &desksidev1.GetUpdatesRequest{WithoutDevices: true}); err != nil || len(u.GetDevices()) != 0 || u.GetProgress().GetInstalled() != 1 {
		t.Fatalf("without devices: %v %v", u, err)
	}
	if _, err := up.GetUpdates(actx, &desksidev1.GetUpdatesRequest{PageSize: 6000}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("page of 6,000: %v", err)
	}

	// Tier 1 is refused every call of the page.
	h, _ := auth.HashPassword("tier-one-password")
	if err := r.Srv.Store().CreateTechnician(actx, store.Technician{Name: "tier1", PasswordHash: h, Role: int(desksidev1.Role_ROLE_TIER1), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, tctx := r.Console(t, "tier1", "tier-one-password")
	for name, call := range map[string]func() (proto.Message, error){
		"ListReleases": func() (proto.Message, error) { return up.ListReleases(tctx, &desksidev1.ListReleasesRequest{}) },
		"GetUpdates":   func() (proto.Message, error) { return up.GetUpdates(tctx, &desksidev1.GetUpdatesRequest{}) },
		"StartRollout dry run": func() (proto.Message, error) {
			return up.StartRollout(tctx, &desksidev1.StartRolloutRequest{Version: "v1.1.0", Os: runtime.GOOS, Arch: runtime.GOARCH, Percent: 10, DryRun: true})
		},
	} {
		if _, err := call(); status.Code(err) != codes.PermissionDenied {
			t.Errorf("tier 1 %s: %v", name, err)
		}
	}
}
