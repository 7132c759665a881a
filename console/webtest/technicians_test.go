package webtest

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
)

// TestTechniciansPage: an admin adds a tier-1 technician on the
// Technicians page (a generated password, shown once); the technician
// signs in with it, has to choose their own password first, and then sees
// a device without any control, command or action button, where the
// relay would refuse them anyway.
func TestTechniciansPage(t *testing.T) {
	c := startConsole(t)
	dev := c.relay.Enroll(t, "tier-desk").DeviceID
	// tess works in "lab" (below): the device is in it, or she would not
	// see it at all.
	admin, actx := c.relay.Admin(t)
	if _, err := admin.SetDeviceGroup(actx, &desksidev1.SetDeviceGroupRequest{DeviceId: dev, Group: "lab"}); err != nil {
		t.Fatal(err)
	}

	c.signIn(t, "admin", servertest.AdminPassword)
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=nav-technicians]`)),
		chromedp.WaitVisible(css(`[data-testid=tech-row][data-name=admin]`)),
		chromedp.SendKeys(css(`[data-testid=tech-add-name]`), "tess"),
		chromedp.SetValue(css(`[data-testid=tech-add-role]`), "1"),
		chromedp.SendKeys(css(`[data-testid=tech-add-groups]`), "front desk, lab"),
		chromedp.Click(css(`[data-testid=tech-add]`)),
		chromedp.WaitVisible(css(`[data-testid=tech-password]`)),
		chromedp.WaitVisible(css(`[data-testid=tech-row][data-name=tess]`)),
	)
	pw := eval[string](t, c, `document.querySelector('[data-testid=tech-password]').textContent`)
	if len(pw) < 12 {
		t.Fatalf("generated password %q", pw)
	}
	row := eval[string](t, c, `document.querySelector('[data-testid=tech-row][data-name=tess]').innerText`)
	if !strings.Contains(row, "must change password") || eval[string](t, c, `document.querySelector('[data-testid=tech-row][data-name=tess] [data-testid=tech-groups]').value`) != "front desk, lab" {
		t.Errorf("tess's row: %q", row)
	}
	if n := eval[int](t, c, `document.querySelectorAll('[data-testid=tech-row][data-name=admin] [data-testid=tech-delete], [data-testid=tech-row][data-name=admin] [data-testid=tech-disable]').length`); n != 0 {
		t.Error("the admin's own row offers delete or disable")
	}
	c.screenshot(t, "technicians.png")
	evs, err := c.relay.Srv.Store().ListAudit(t.Context(), store.AuditFilter{Actor: "admin", Action: "technician.create"})
	if err != nil || len(evs) != 1 || evs[0].Target != "tess" {
		t.Fatalf("audit of the creation: %v, %v", evs, err)
	}

	// tess's first sign-in: the password change and nothing else.
	c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=signout]`)), chromedp.WaitVisible(css(`[data-testid=login-name]`)))
	c.run(t, 30*time.Second,
		chromedp.SendKeys(css(`[data-testid=login-name]`), "tess"),
		chromedp.SendKeys(css(`[data-testid=login-password]`), pw),
		chromedp.Click(css(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(css(`[data-testid=must-change]`)),
		chromedp.SendKeys(css(`[data-testid=pw-new]`), "my own good passphrase"),
		chromedp.SendKeys(css(`[data-testid=pw-again]`), "my own other passphrase"),
		chromedp.Click(css(`[data-testid=pw-submit]`)),
		chromedp.WaitVisible(css(`[data-testid=pw-error] .notice-error`)),
	)
	c.run(t, 30*time.Second,
		chromedp.SetValue(css(`[data-testid=pw-again]`), "my own good passphrase"),
		chromedp.Click(css(`[data-testid=pw-submit]`)),
	)
	// The address is still the admin's page: the relay refuses it.
	c.run(t, 30*time.Second, chromedp.WaitVisible(css(`.page-technicians .notice-error`)))
	if got := eval[string](t, c, `document.querySelector('.page-technicians .notice-error').textContent`); !strings.Contains(got, "needs role admin") {
		t.Errorf("tier-1 technicians page says %q", got)
	}
	c.run(t, 30*time.Second,
		chromedp.Navigate(c.url+"#/fleet"),
		chromedp.WaitVisible(css(`[data-testid=fleet-table]`)),
	)
	if n := eval[int](t, c, `document.querySelectorAll('[data-testid=nav-technicians], [data-testid=nav-audit]').length`); n != 0 {
		t.Error("a tier-1 technician sees admin links")
	}

	// The device: View only (it needs consent), no Control, no commands,
	// no actions; the Diagnostics tab says why.
	c.run(t, 30*time.Second,
		chromedp.Navigate(c.url+"#/devices/"+dev+"?tab=diagnostics"),
		chromedp.WaitVisible(css(`[data-testid=remote-view]`)),
		chromedp.WaitVisible(css(`[data-testid=tier-note]`)),
	)
	for _, sel := range []string{"remote-control", "cmd-run", "action-run", "policy-save"} {
		if n := eval[int](t, c, `document.querySelectorAll('[data-testid=`+sel+`]').length`); n != 0 {
			t.Errorf("a tier-1 technician sees %s", sel)
		}
	}
	c.screenshot(t, "technicians-tier1-device.png")

	// The new password works; the generated one does not.
	c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=signout]`)), chromedp.WaitVisible(css(`[data-testid=login-name]`)))
	c.signIn(t, "tess", "my own good passphrase")
}
