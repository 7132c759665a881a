package webtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/notify"
	"github.com/deskside/deskside/relay/notify/mailtest"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
)

// hookReceiver is a real HTTP server that keeps every webhook post.
type hookReceiver struct {
	mu    sync.Mutex
	posts []hookPost
}

type hookPost struct {
	sig  string
	body []byte
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.posts = append(h.posts, hookPost{r.Header.Get(notify.SignatureHeader), b})
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) all() []hookPost {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookPost(nil), h.posts...)
}

// fullScreenshot is screenshot of the whole page, not just the window.
func fullScreenshot(t *testing.T, c *console, name string) {
	t.Helper()
	dir := os.Getenv("DESKSIDE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	png := value(t, c, 20*time.Second, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSettingsPage: an admin turns email on in the Settings page with a
// real SMTP server (STARTTLS, signed in), sends a test mail that arrives,
// edits the "created" template (the preview fills it; the next ticket's
// mail has the new subject), adds a webhook (its secret shown once) that
// then receives a signed ticket event listed in the delivery log, sees a
// mail the server refused (550) failed with its reply under Outgoing mail
// and retries it once fixed, changes
// an SLA target and a technician's email; the password is never shown
// back; each change is audited. Before that, a ticket says email is off.
// A tier-1 technician has no Settings link, the page shows the relay's
// refusal, and the RPCs refuse them.
func TestSettingsPage(t *testing.T) {
	mailSrv := mailtest.Start(t, false)
	c := startConsoleWith(t, func(cfg *server.Config) {
		cfg.SMTPRootCAs = mailSrv.RootCAs
		cfg.WebhookBackoff = []time.Duration{100 * time.Millisecond}
	})
	recv := &hookReceiver{}
	hookSrv := httptest.NewServer(recv)
	t.Cleanup(hookSrv.Close)

	_, actx := c.relay.Admin(t)
	cc := c.relay.Dial(t)
	tickets := desksidev1.NewTicketServiceClient(cc)
	notifier := desksidev1.NewNotificationServiceClient(cc)
	newTicket := func(subject string) string {
		t.Helper()
		r, err := tickets.CreateTicket(actx, &desksidev1.CreateTicketRequest{
			Requester: &desksidev1.TicketRequester{Name: "Sam Requester", Email: "sam@example.com"},
			Subject:   subject, Description: "It says offline.",
		})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetTicket().GetCode()
	}

	// Email off: the ticket says the requester will not be mailed.
	quiet := newTicket("Printer offline")
	c.signIn(t, "admin", servertest.AdminPassword)
	c.run(t, 20*time.Second,
		chromedp.Navigate(c.url+"#/tickets/"+quiet),
		chromedp.WaitVisible(css(`[data-testid=tk-code]`)),
		chromedp.WaitVisible(css(`[data-testid=mail-off]`)),
	)
	if got := eval[string](t, c, `document.querySelector('[data-testid=mail-off]').parentElement.textContent`); !strings.Contains(got, "Email is off — the requester will not be mailed. Set it up in Settings.") {
		t.Errorf("ticket notice: %q", got)
	}
	c.screenshot(t, "ticket-mail-off.png")

	// Settings: off, then on with the real server.
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=nav-settings]`)),
		chromedp.WaitVisible(css(`[data-testid=smtp-off]`)),
		chromedp.WaitVisible(css(`[data-testid=sla-row][data-priority=urgent]`)),
		chromedp.WaitVisible(css(`[data-testid=tpl-preview-subject]`)),
		chromedp.WaitVisible(css(`[data-testid=mailq-empty]`)),
	)
	if got := eval[string](t, c, `document.querySelector('[data-testid=mailq-empty]').textContent`); got != "Nothing is waiting: no mail is pending or failed." {
		t.Errorf("outgoing mail, empty, says %q", got)
	}
	if got := eval[string](t, c, `document.querySelector('[data-testid=smtp-off]').textContent`); got != "Email is off: no mail is sent to requesters or technicians." {
		t.Errorf("SMTP off says %q", got)
	}
	c.run(t, 20*time.Second,
		chromedp.SendKeys(css(`[data-testid=smtp-host]`), mailSrv.Host),
		chromedp.SetValue(css(`[data-testid=smtp-port]`), strconv.Itoa(mailSrv.Port)),
		chromedp.SetValue(css(`[data-testid=smtp-tls]`), "starttls"),
		chromedp.SendKeys(css(`[data-testid=smtp-user]`), mailtest.User),
		chromedp.SendKeys(css(`[data-testid=smtp-password]`), mailtest.Password),
		chromedp.SendKeys(css(`[data-testid=smtp-from]`), "helpdesk@example.com"),
		chromedp.Click(css(`[data-testid=smtp-save]`)),
		chromedp.WaitVisible(css(`[data-testid=smtp-on]`)),
	)
	if pw := eval[string](t, c, `document.querySelector('[data-testid=smtp-password]').value`); pw != "" {
		t.Errorf("the password field shows %q after saving", pw)
	}
	if eval[bool](t, c, `document.documentElement.outerHTML.includes(`+strconv.Quote(mailtest.Password)+`)`) {
		t.Error("the page holds the SMTP password")
	}
	c.run(t, 30*time.Second,
		chromedp.SendKeys(css(`[data-testid=smtp-test-to]`), "admin@example.com"),
		chromedp.Click(css(`[data-testid=smtp-test]`)),
		chromedp.WaitVisible(css(`[data-testid=smtp-test-ok]`)),
	)
	m := mailSrv.Wait(t, 10*time.Second, mailtest.To("admin@example.com", "Deskside test message"))
	if !m.Authed || !m.TLS {
		t.Errorf("test mail: signed in %v, over TLS %v", m.Authed, m.TLS)
	}
	// A wrong password: the mail server's refusal is shown as such. The
	// right one again (saving with the field empty would keep the wrong).
	saveSMTP := func(pw string) {
		t.Helper()
		c.run(t, 20*time.Second,
			chromedp.SendKeys(css(`[data-testid=smtp-password]`), pw),
			chromedp.Click(css(`[data-testid=smtp-save]`)),
			chromedp.WaitVisible(css(`[data-testid=smtp-status] .notice-ok`)),
		)
	}
	saveSMTP("a wrong password")
	c.run(t, 30*time.Second,
		chromedp.Click(css(`[data-testid=smtp-test]`)),
		chromedp.WaitVisible(css(`[data-testid=smtp-test-status] .notice-error`)),
	)
	if got := eval[string](t, c, `document.querySelector('[data-testid=smtp-test-status]').textContent`); !strings.Contains(got, "The mail server did not take the test mail") {
		t.Errorf("refused test mail says %q", got)
	}
	saveSMTP(mailtest.Password)
	c.run(t, 20*time.Second,
		chromedp.SetValue(css(`[data-testid=smtp-test-to]`), "not an address"),
		chromedp.Click(css(`[data-testid=smtp-test]`)),
		chromedp.WaitVisible(css(`[data-testid=smtp-test-status] .notice-error`)),
	)

	// Template: the preview fills the placeholders; saved, it is what the
	// next requester gets.
	if got := eval[string](t, c, `document.querySelector('[data-testid=tpl-name]').value`); got != "created" {
		t.Fatalf("the first template is %q", got)
	}
	c.run(t, 20*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=tpl-subject]').value = ''`),
		chromedp.SendKeys(css(`[data-testid=tpl-subject]`), "[{{.Code}}] Filed for you: {{.Subject}}"),
	)
	if got := eval[string](t, c, `document.querySelector('[data-testid=tpl-preview-subject]').textContent`); got != "[DS-7K3Q] Filed for you: Printer offline" {
		t.Errorf("template preview subject %q", got)
	}
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=tpl-save]`)),
		chromedp.WaitVisible(css(`[data-testid=tpl-status] .notice-ok`)),
		chromedp.WaitVisible(css(`[data-testid=tpl-reset]`)),
	)
	tpl, err := notifier.GetTemplate(actx, &desksidev1.GetTemplateRequest{Name: "created"})
	if err != nil || tpl.GetIsDefault() || !strings.HasPrefix(tpl.GetText(), "Subject: [{{.Code}}] Filed for you: {{.Subject}}\n\nHello {{.RequesterName}},") {
		t.Fatalf("stored template: %q default %v, %v", tpl.GetText(), tpl.GetIsDefault(), err)
	}
	// A template the relay cannot render is refused with its sentence.
	c.run(t, 20*time.Second,
		chromedp.SendKeys(css(`[data-testid=tpl-subject]`), " {{.Nope}}"),
		chromedp.Click(css(`[data-testid=tpl-save]`)),
		chromedp.WaitVisible(css(`[data-testid=tpl-status] .notice-error`)),
	)

	// Webhook: added with a generated secret shown once.
	c.run(t, 20*time.Second,
		chromedp.SendKeys(css(`[data-testid=hook-url]`), hookSrv.URL+"/deskside"),
		chromedp.Click(css(`[data-testid=hook-add]`)),
		chromedp.WaitVisible(css(`[data-testid=hook-secret-once]`)),
		chromedp.WaitVisible(css(`[data-testid=hook-row]`)),
	)
	secret := eval[string](t, c, `document.querySelector('[data-testid=hook-secret-once]').textContent`)
	if len(secret) < 32 {
		t.Fatalf("webhook secret %q", secret)
	}

	// A new ticket: mailed with the edited subject, posted to the webhook.
	code := newTicket("Scanner jams")
	mailSrv.Wait(t, 10*time.Second, mailtest.To("sam@example.com", "["+code+"] Filed for you: Scanner jams"))
	servertest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		for _, p := range recv.all() {
			if strings.Contains(string(p.body), code) {
				return notify.Verify(secret, p.sig, p.body, time.Now(), time.Minute)
			}
		}
		return errNotYet
	})
	delivered := `[data-testid=hook-delivery][data-ok=true]`
	servertest.CheckFor(t, 15*time.Second, 300*time.Millisecond, func() error {
		c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=hook-refresh]`)))
		if eval[int](t, c, `document.querySelectorAll('`+delivered+`').length`) == 0 {
			return errNotYet
		}
		return nil
	})
	row := eval[string](t, c, `document.querySelector('`+delivered+`').innerText`)
	if !strings.Contains(row, code) || !strings.Contains(row, "Delivered") || !strings.Contains(row, "204") {
		t.Errorf("delivery log row: %q", row)
	}

	// Outgoing mail: a recipient the server refuses for good fails at
	// once with the server's reply; once fixed, Retry sends it.
	mailSrv.Refuse("gone@example.com", 550, "no such user")
	r, err := tickets.CreateTicket(actx, &desksidev1.CreateTicketRequest{
		Requester: &desksidev1.TicketRequester{Name: "Gone Requester", Email: "gone@example.com"}, Subject: "Mailbox moved"})
	if err != nil {
		t.Fatal(err)
	}
	goneCode := r.GetTicket().GetCode()
	failedRow := `[data-testid=mailq-row][data-state=failed]`
	servertest.CheckFor(t, 15*time.Second, 300*time.Millisecond, func() error {
		c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=mailq-refresh]`)), chromedp.Sleep(100*time.Millisecond))
		if eval[int](t, c, `document.querySelectorAll('`+failedRow+`').length`) == 0 {
			return errNotYet
		}
		return nil
	})
	row = eval[string](t, c, `document.querySelector('`+failedRow+`').innerText`)
	if !strings.Contains(row, "gone@example.com") || !strings.Contains(row, goneCode) || !strings.Contains(row, "Failed") ||
		!strings.Contains(row, "550") || !strings.Contains(row, "no such user") {
		t.Errorf("failed mail row: %q", row)
	}
	c.run(t, 10*time.Second, chromedp.ScrollIntoView(css(`[data-testid=settings-mailq]`)))
	c.screenshot(t, "settings-mail-failed.png")
	mailSrv.Refuse("gone@example.com", 0, "")
	c.run(t, 20*time.Second,
		chromedp.Click(css(failedRow+` [data-testid=mailq-retry]`)),
		chromedp.WaitVisible(css(`[data-testid=mailq-status] .notice-ok`)),
	)
	mailSrv.Wait(t, 10*time.Second, mailtest.To("gone@example.com", goneCode))
	servertest.CheckFor(t, 15*time.Second, 300*time.Millisecond, func() error {
		c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=mailq-refresh]`)), chromedp.Sleep(100*time.Millisecond))
		if !eval[bool](t, c, `!document.querySelector('[data-testid=mailq-empty]').hidden`) {
			return errNotYet
		}
		return nil
	})

	// SLA: urgent first response 20 minutes.
	c.run(t, 20*time.Second,
		chromedp.SetValue(css(`[data-testid=sla-row][data-priority=urgent] [data-testid=sla-first]`), "20m"),
		chromedp.Click(css(`[data-testid=sla-save]`)),
		chromedp.WaitVisible(css(`[data-testid=sla-status] .notice-ok`)),
	)
	st, err := tickets.GetTicketSettings(actx, &desksidev1.GetTicketSettingsRequest{})
	if err != nil || !st.GetMailConfigured() {
		t.Fatalf("ticket settings: %v (mail %v)", err, st.GetMailConfigured())
	}
	for _, s := range st.GetSettings().GetSla() {
		if s.GetPriority() == desksidev1.TicketPriority_TICKET_PRIORITY_URGENT && s.GetFirstResponse().AsDuration() != 20*time.Minute {
			t.Errorf("urgent first response %v", s.GetFirstResponse().AsDuration())
		}
	}
	c.run(t, 20*time.Second,
		chromedp.SetValue(css(`[data-testid=sla-row][data-priority=urgent] [data-testid=sla-first]`), "soon"),
		chromedp.Click(css(`[data-testid=sla-save]`)),
		chromedp.WaitVisible(css(`[data-testid=sla-status] .notice-error`)),
		chromedp.SetValue(css(`[data-testid=sla-row][data-priority=urgent] [data-testid=sla-first]`), "20m"),
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`),
	)
	c.screenshot(t, "settings.png")
	fullScreenshot(t, c, "settings-full.png")

	// Email on: the ticket no longer warns.
	c.run(t, 20*time.Second,
		chromedp.Navigate(c.url+"#/tickets/"+quiet),
		chromedp.WaitVisible(css(`[data-testid=tk-code]`)),
		chromedp.WaitReady(css(`[data-testid=mail-off-slot]`)),
		chromedp.Sleep(300*time.Millisecond),
	)
	if n := eval[int](t, c, `document.querySelectorAll('[data-testid=mail-off]').length`); n != 0 {
		t.Error("the ticket still says email is off")
	}

	// A technician's email, on the Technicians page.
	addTechnician(t, c, "tess", "tess's good passphrase", desksidev1.Role_ROLE_TIER1)
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=nav-technicians]`)),
		chromedp.WaitVisible(css(`[data-testid=tech-row][data-name=tess] [data-testid=tech-email]`)),
		chromedp.SendKeys(css(`[data-testid=tech-row][data-name=tess] [data-testid=tech-email]`), "tess@example.com"),
		chromedp.Click(css(`[data-testid=tech-row][data-name=tess] [data-testid=tech-email-save]`)),
		chromedp.WaitVisible(css(`[data-testid=techs-status] .notice-ok`)),
	)
	if tess, err := c.relay.Srv.Store().GetTechnician(t.Context(), "tess"); err != nil || tess.Email != "tess@example.com" {
		t.Fatalf("tess's email: %+v, %v", tess, err)
	}
	if got := eval[string](t, c, `document.querySelector('[data-testid=tech-row][data-name=tess] [data-testid=tech-email]').value`); got != "tess@example.com" {
		t.Errorf("the Technicians page shows tess's email as %q", got)
	}
	c.screenshot(t, "technicians-email.png")

	for _, action := range []string{"notify.smtp.set", "notify.smtp.test", "notify.template.set", "notify.webhook.add", "ticket.settings", "technician.email", "notify.outbox.retry"} {
		evs, err := c.relay.Srv.Store().ListAudit(t.Context(), store.AuditFilter{Actor: "admin", Action: action})
		if err != nil || len(evs) == 0 {
			t.Errorf("no audit of %s: %v", action, err)
		}
	}

	// A tier-1 technician: no link, the relay's refusal on the page, and
	// the RPCs refuse.
	c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=signout]`)), chromedp.WaitVisible(css(`[data-testid=login-name]`)))
	c.signIn(t, "tess", "tess's good passphrase")
	if n := eval[int](t, c, `document.querySelectorAll('[data-testid=nav-settings]').length`); n != 0 {
		t.Error("a tier-1 technician sees the Settings link")
	}
	c.run(t, 20*time.Second,
		chromedp.Navigate(c.url+"#/settings"),
		chromedp.WaitVisible(css(`.page-settings .notice-error`)),
	)
	if got := eval[string](t, c, `document.querySelector('.page-settings .notice-error').textContent`); !strings.Contains(got, "needs role admin") {
		t.Errorf("tier-1 settings page says %q", got)
	}
	if n := eval[int](t, c, `[...document.querySelectorAll('.page-settings .card')].filter(e => e.offsetParent !== null).length`); n != 0 {
		t.Errorf("a tier-1 technician sees %d settings cards", n)
	}
	_, tctx := c.relay.Console(t, "tess", "tess's good passphrase")
	for name, call := range map[string]func() error{
		"GetSmtp": func() error { _, err := notifier.GetSmtp(tctx, &desksidev1.GetSmtpRequest{}); return err },
		"SetSmtp": func() error {
			_, err := notifier.SetSmtp(tctx, &desksidev1.SetSmtpRequest{Smtp: &desksidev1.SmtpSettings{}})
			return err
		},
		"AddWebhook": func() error {
			_, err := notifier.AddWebhook(tctx, &desksidev1.AddWebhookRequest{Url: hookSrv.URL})
			return err
		},
		"SetTemplate": func() error {
			_, err := notifier.SetTemplate(tctx, &desksidev1.SetTemplateRequest{Name: "created"})
			return err
		},
		"ListOutbox": func() error { _, err := notifier.ListOutbox(tctx, &desksidev1.ListOutboxRequest{}); return err },
		"RetryOutbox": func() error {
			_, err := notifier.RetryOutbox(tctx, &desksidev1.RetryOutboxRequest{Id: 1})
			return err
		},
		"SetTicketSettings": func() error {
			_, err := tickets.SetTicketSettings(tctx, &desksidev1.SetTicketSettingsRequest{})
			return err
		},
		"SetTechnicianEmail": func() error {
			_, err := notifier.SetTechnicianEmail(tctx, &desksidev1.SetTechnicianEmailRequest{Technician: "tess", Email: "x@example.com"})
			return err
		},
	} {
		if err := call(); status.Code(err) != codes.PermissionDenied {
			t.Errorf("tier 1 %s: %v", name, err)
		}
	}
	// What they may know: whether the requester is mailed.
	if st, err := tickets.GetTicketSettings(tctx, &desksidev1.GetTicketSettingsRequest{}); err != nil || !st.GetMailConfigured() {
		t.Errorf("tier 1 ticket settings: %v, mail %v", err, st.GetMailConfigured())
	}
}
