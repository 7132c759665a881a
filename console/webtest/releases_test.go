package webtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deskside/deskside/agent/health"
	"github.com/deskside/deskside/agent/inventory"
	"github.com/deskside/deskside/agent/update"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/updates"
)

// failingInstaller is the real updater whose install fails with reason:
// the agent reports it, the page shows it as text.
type failingInstaller struct {
	*update.Updater
	reason string
}

func (f failingInstaller) Install(_ *desksidev1.SignedRelease, exe io.Reader) (*desksidev1.ReleaseManifest, error) {
	io.Copy(io.Discard, exe)
	return nil, errors.New(f.reason)
}

// TestReleasesPage: an admin sees the empty Releases page name the CLI
// upload; a signed release is uploaded through the real API; from the
// page the admin starts a 10 % rollout behind a confirmation that counts
// the devices offered, and watches the counts change as real agent links
// with the real updater report (installed, refused with no release pin,
// failed with a hostile reason shown as text and a link to the device),
// then widens it to all devices. The web API refuses uploads; a tier-3
// technician has no Releases link and the relay refuses the page.
func TestReleasesPage(t *testing.T) {
	c := startConsole(t)
	ctx := context.Background()
	c.signIn(t, "admin", servertest.AdminPassword)
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=nav-releases]`)),
		chromedp.WaitVisible(css(`[data-testid=release-upload-help]`)),
		chromedp.WaitVisible(css(`[data-testid=no-rollout]`)),
	)
	if help := eval[string](t, c, `document.querySelector('[data-testid=release-upload-help]').innerText`); !strings.Contains(help, "deskside release upload deskside-agent") {
		t.Errorf("empty page says %q", help)
	}

	// The devices: real agent links with the real updater, v1.0.0, until
	// at least 3 of them are in the 10 % buckets. Of those, the first has
	// no release pin (it refuses) and the second fails to install; the
	// others install. Outside the 10 %, the first fails with a hostile
	// reason.
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	pin := envelope.Fingerprint(key.Public().(ed25519.PublicKey))
	newExe := bytes.Repeat([]byte("agent v1.1.0 "), 50_000)
	type agent struct {
		id, exe string
		ten     int // order among the 10 % (-1: outside)
		hostile bool
	}
	var agents []*agent
	ten, hostile := 0, false
	for ten < 3 || len(agents) < 12 {
		if len(agents) == 300 {
			t.Fatal("300 devices and fewer than 3 in the 10 % buckets: the buckets are not uniform")
		}
		st := c.relay.Enroll(t, fmt.Sprintf("desk-%02d", len(agents)))
		a := &agent{id: st.DeviceID, exe: filepath.Join(st.Dir, "deskside-agent"), ten: -1}
		if updates.Bucket(a.id) < 1000 {
			a.ten = ten
			ten++
		} else if !hostile {
			a.hostile, hostile = true, true
		}
		os.WriteFile(a.exe, []byte("agent v1.0.0"), 0o755)
		if a.ten != 0 {
			if err := update.Pin(st.Dir, pin); err != nil {
				t.Fatal(err)
			}
		}
		var u interface {
			Verify(*desksidev1.SignedRelease) (*desksidev1.ReleaseManifest, error)
			Install(*desksidev1.SignedRelease, io.Reader) (*desksidev1.ReleaseManifest, error)
		} = &update.Updater{Dir: st.Dir, Exe: a.exe, Version: "v1.0.0"}
		switch {
		case a.ten == 1:
			u = failingInstaller{u.(*update.Updater), "write deskside-agent.next: no space left on device"}
		case a.hostile:
			u = failingInstaller{u.(*update.Updater), "disk full " + payload}
		}
		log := servertest.DiscardLogger()
		servertest.RunAgent(t, st, servertest.AgentOptions{
			Inventory: inventory.New(log), Health: health.NewSampler(log, health.Options{}), HealthInterval: time.Hour,
			Hostname: fmt.Sprintf("desk-%02d", len(agents)), Version: "v1.0.0", Updates: u,
		})
		agents = append(agents, a)
	}
	n := len(agents)
	admin, actx := c.relay.Admin(t)
	servertest.AwaitOnline(t, admin, actx, n, 30*time.Second)

	// The release, through the real API as deskside release upload sends it.
	rel, err := envelope.SignRelease(key, envelope.ReleaseManifestFor(newExe, "v1.1.0", runtime.GOOS, runtime.GOARCH), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	up := desksidev1.NewUpdateServiceClient(c.relay.Dial(t))
	st, err := up.UploadRelease(actx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&desksidev1.UploadReleaseRequest{Release: rel, Data: newExe}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}

	platform := runtime.GOOS + "/" + runtime.GOARCH
	c.run(t, 20*time.Second,
		chromedp.Navigate(c.url+"#/fleet"),
		chromedp.WaitVisible(css(`[data-testid=fleet-table]`)),
		chromedp.Navigate(c.url+"#/releases"),
		chromedp.WaitVisible(css(`[data-testid=release-row][data-version="v1.1.0"][data-platform="`+platform+`"]`)),
	)
	if row := eval[string](t, c, `document.querySelector('[data-testid=release-row]').innerText`); !strings.Contains(row, pin) {
		t.Errorf("release row %q lacks the release key %s", row, pin)
	}

	// A 10 % rollout from the page: the confirmation counts the 10 %.
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=rollout-target-percent]`)),
		chromedp.SetValue(css(`[data-testid=rollout-percent]`), "10"),
		chromedp.Click(css(`[data-testid=rollout-review]`)),
		chromedp.WaitVisible(css(`[data-testid=rollout-confirm-text]`)),
	)
	if got := eval[string](t, c, `document.querySelector('[data-testid=rollout-confirm-text]').dataset.offer`); got != strconv.Itoa(ten) {
		t.Errorf("the confirmation offers %s devices, want %d (%s)", got, ten, eval[string](t, c, `document.querySelector('[data-testid=rollout-confirm-text]').innerText`))
	}
	if p, _ := up.GetUpdates(actx, &desksidev1.GetUpdatesRequest{}); p.GetRollout() != nil {
		t.Fatal("the review started the rollout")
	}
	c.run(t, 5*time.Second, chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`))
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=rollout-confirm]`)),
		chromedp.WaitVisible(css(`[data-testid=rollout-version]`)),
	)
	// The counts follow the agents' reports without a reload.
	c.run(t, 30*time.Second,
		chromedp.WaitVisible(css(fmt.Sprintf(`[data-testid=count-installed][data-n="%d"]`, ten-2))),
		chromedp.WaitVisible(css(`[data-testid=count-refused][data-n="1"]`)),
		chromedp.WaitVisible(css(`[data-testid=count-failed][data-n="1"]`)),
		chromedp.WaitVisible(css(`[data-testid=count-offered][data-n="0"]`)),
	)
	if !eval[bool](t, c, `window.__sameDocument === true`) {
		t.Fatal("the page reloaded to show the progress")
	}
	for _, a := range agents {
		b, _ := os.ReadFile(a.exe)
		if got, want := bytes.Equal(b, newExe), a.ten >= 2; got != want {
			t.Errorf("device %s (10 %% order %d): updated %v", a.id, a.ten, got)
		}
	}
	text := eval[string](t, c, `document.querySelector('[data-testid=rollout-card]').innerText`)
	for _, want := range []string{"10 % of the devices", "by admin", fmt.Sprintf("%d of %d devices run v1.1.0", ten-2, ten), "auto-update is off", "no space left on device"} {
		if !strings.Contains(text, want) {
			t.Errorf("the rollout card lacks %q:\n%s", want, text)
		}
	}
	if got := eval[string](t, c, `document.querySelector('[data-testid=rollout-bar]').getAttribute('aria-valuetext')`); !strings.Contains(got, "run v1.1.0") {
		t.Errorf("progress bar's text %q", got)
	}
	var refusedID string
	for _, a := range agents {
		if a.ten == 0 {
			refusedID = a.id
		}
	}
	if href := eval[string](t, c, `document.querySelector('[data-testid=failure-row][data-device-id="`+refusedID+`"] a').getAttribute('href')`); href != "#/devices/"+refusedID {
		t.Errorf("the refused device links to %q", href)
	}
	c.run(t, 5*time.Second, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	c.screenshot(t, "releases.png")

	// Widen to all devices: the others install.
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=rollout-target-all]`)),
		chromedp.Click(css(`[data-testid=rollout-review]`)),
		chromedp.WaitVisible(css(`[data-testid=rollout-confirm-text]`)),
	)
	if got := eval[string](t, c, `document.querySelector('[data-testid=rollout-confirm-text]').innerText`); !strings.Contains(got, "Change the rollout to v1.1.0") || !strings.Contains(got, fmt.Sprintf("%d of them run", n-ten)) {
		t.Errorf("widening says %q", got)
	}
	c.run(t, 60*time.Second,
		chromedp.Click(css(`[data-testid=rollout-confirm]`)),
		chromedp.WaitVisible(css(fmt.Sprintf(`[data-testid=count-installed][data-n="%d"]`, n-3))),
		chromedp.WaitVisible(css(`[data-testid=count-failed][data-n="2"]`)),
	)
	c.run(t, 5*time.Second, chromedp.Sleep(500*time.Millisecond)) // give any injected handler a chance to fire
	if eval[bool](t, c, `window.__pwned === 1`) {
		t.Fatal("an agent's failure reason ran script")
	}
	if got := eval[string](t, c, `document.querySelector('[data-testid=failures-table]').innerText`); !strings.Contains(got, `<script>window.__pwned=1</script>`) {
		t.Errorf("the hostile reason is not shown as text:\n%s", got)
	}

	// The web API does not take uploads (the CLI does).
	res := value(t, c, 10*time.Second, chromedp.Evaluate[string](`fetch("/deskside.v1.UpdateService/UploadRelease", {method: "POST", headers: {"Content-Type": "application/connect+json"}, body: ""}).then(r => r.status + " " + r.statusText)`, chromedp.EvalAwaitPromise))
	if !strings.HasPrefix(res, "404") {
		t.Errorf("an upload through the web API: %s", res)
	}

	// A tier-3 technician: no Releases link, and the relay refuses the page.
	h, _ := auth.HashPassword("tier-three-password")
	if err := c.relay.Srv.Store().CreateTechnician(ctx, store.Technician{Name: "lead", PasswordHash: h, Role: int(desksidev1.Role_ROLE_TIER3), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=signout]`)), chromedp.WaitVisible(css(`[data-testid=login-name]`)))
	c.signIn(t, "lead", "tier-three-password")
	if n := eval[int](t, c, `document.querySelectorAll('[data-testid=nav-releases]').length`); n != 0 {
		t.Error("a tier-3 technician sees the Releases link")
	}
	c.run(t, 20*time.Second,
		chromedp.Navigate(c.url+"#/releases"),
		chromedp.WaitVisible(css(`.page-releases .notice-error`)),
	)
	if got := eval[string](t, c, `document.querySelector('.page-releases .notice-error').textContent`); !strings.Contains(got, "needs role admin") {
		t.Errorf("tier-3 Releases page says %q", got)
	}
}
