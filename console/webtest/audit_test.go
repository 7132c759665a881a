package webtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
)

// TestAuditPage drives the audit page against a real relay: records
// carrying a user-supplied name (a failed sign-in) and an agent-supplied
// hostname (an enrollment) shown as text, the action filter, paging past
// 50 records and back, the relay's verification, and a tier-1 technician,
// who has no link to the page and is refused by the relay.
func TestAuditPage(t *testing.T) {
	c := startConsole(t)
	// A sign-in under a hostile name puts it in the log as the actor.
	cs := desksidev1.NewConsoleServiceClient(c.relay.Dial(t))
	if _, err := cs.Login(context.Background(), &desksidev1.LoginRequest{Name: payload, Password: "wrong-password-here"}); err == nil {
		t.Fatal("a sign-in under an unknown name succeeded")
	}
	c.relay.Enroll(t, payload) // the agent's hostname, in the enrollment's detail
	admin, actx := c.relay.Admin(t)
	for range 60 {
		if _, err := admin.CreateEnrollmentToken(actx, &desksidev1.CreateEnrollmentTokenRequest{Ttl: durationpb.New(time.Hour), Uses: 1}); err != nil {
			t.Fatal(err)
		}
	}

	c.signIn(t, "admin", servertest.AdminPassword)
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=nav-audit]`)),
		chromedp.WaitVisible(css(`[data-testid=audit-row]`)),
	)
	rows := func() int { return eval[int](t, c, `document.querySelectorAll('[data-testid=audit-row]').length`) }
	if n := rows(); n != 50 {
		t.Errorf("first page shows %d records, want 50", n)
	}
	first := eval[string](t, c, `document.querySelector('[data-testid=audit-row]').dataset.seq`)

	// Older, then back to the newest.
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=audit-older]`)),
		chromedp.WaitNotPresent(css(`[data-testid=audit-row][data-seq="`+first+`"]`)),
		// The newest page's rows go first, the older page's come after.
		chromedp.WaitVisible(css(`[data-testid=audit-row]`)),
	)
	if !strings.Contains(eval[string](t, c, `location.hash`), "before=") {
		t.Errorf("the page cursor is not in the URL: %s", eval[string](t, c, `location.hash`))
	}
	// The oldest page holds the hostile records: text, never markup.
	text := eval[string](t, c, `document.querySelector('[data-testid=audit-table]').innerText`)
	if !strings.Contains(text, `<script>window.__pwned=1</script>`) || !strings.Contains(text, "login.failed") || !strings.Contains(text, "device.enroll") {
		t.Errorf("the hostile actor and hostname are not shown as text:\n%s", text)
	}
	if n := eval[int](t, c, `document.querySelectorAll('[data-testid=audit-table] img, [data-testid=audit-table] script').length`); n != 0 {
		t.Errorf("%d elements made from record text", n)
	}
	if eval[bool](t, c, `window.__pwned === 1`) {
		t.Fatal("a record's text ran as script")
	}
	c.screenshot(t, "audit-older.png")
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=audit-newest]`)),
		chromedp.WaitVisible(css(`[data-testid=audit-row][data-seq="`+first+`"]`)),
	)

	// Filter by action.
	c.run(t, 20*time.Second,
		chromedp.SendKeys(css(`[data-testid=audit-action]`), "device.*"),
		chromedp.Click(css(`[data-testid=audit-apply]`)),
		chromedp.WaitNotPresent(css(`[data-testid=audit-row][data-seq="`+first+`"]`)),
		chromedp.WaitVisible(css(`[data-testid=audit-row]`)),
	)
	if n := rows(); n != 1 {
		t.Errorf("action device.* shows %d records, want the one enrollment", n)
	}
	if got := eval[string](t, c, `document.querySelector('[data-testid=audit-row] code').textContent`); got != "device.enroll" {
		t.Errorf("filtered record's action %q", got)
	}
	// Verify on the relay.
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=audit-verify]`)),
		chromedp.WaitVisible(css(`[data-testid=audit-verify-result] .notice-ok`)),
	)
	if got := eval[string](t, c, `document.querySelector('[data-testid=audit-verify-result]').textContent`); !strings.Contains(got, "records verified") {
		t.Errorf("verification says %q", got)
	}
	c.screenshot(t, "audit.png")

	// A tier-1 technician has no link, and the relay refuses the page.
	hash, err := auth.HashPassword("tier-one-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.relay.Srv.Store().CreateTechnician(context.Background(), store.Technician{
		Name: "tier1", PasswordHash: hash, Role: int(desksidev1.Role_ROLE_TIER1), CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=signout]`)), chromedp.WaitVisible(css(`[data-testid=login-name]`)))
	c.signIn(t, "tier1", "tier-one-password")
	if n := eval[int](t, c, `document.querySelectorAll('[data-testid=nav-audit]').length`); n != 0 {
		t.Error("a tier-1 technician sees the audit link")
	}
	c.run(t, 20*time.Second,
		chromedp.Navigate(c.url+"#/audit"),
		chromedp.WaitVisible(css(`.page-audit .notice-error`)),
	)
	if got := eval[string](t, c, `document.querySelector('.page-audit .notice-error').textContent`); !strings.Contains(got, "needs role admin") {
		t.Errorf("tier-1 refusal says %q", got)
	}
}
