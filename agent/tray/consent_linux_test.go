package tray_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deskside/deskside/agent/desktop/consent"
	"github.com/deskside/deskside/agent/desktop/session"
	"github.com/deskside/deskside/agent/health"
	"github.com/deskside/deskside/agent/inventory"
	"github.com/deskside/deskside/agent/tray"
	"github.com/deskside/deskside/agent/traysvc"
	"github.com/deskside/deskside/agent/usersession"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// TestConsentPage: on a device without a dialog program the consent
// prompt (consent.WithTray) asks on the user's tray over the agent
// service's socket (agent/traysvc): a desktop notification, the page's
// consent view opened by the tray, driven in Chromium — Allow → allowed,
// Deny (the focused default) → denied, the session's end closes the
// question on the page; the menu's Deny denies.
func TestConsentPage(t *testing.T) {
	chrome := chromium(t)
	svc := &traysvc.Service{Logger: servertest.DiscardLogger()}
	// A real relay and agent link, so the page shows the agent connected.
	r := servertest.Start(t, servertest.Options{})
	st := r.Enroll(t, "dana-laptop")
	a := servertest.RunAgent(t, st, servertest.AgentOptions{Inventory: inventory.New(nil), Health: health.NewSampler(nil, health.Options{}),
		HealthInterval: time.Second, Hostname: "dana-laptop", OnHelpUpdate: svc.Push})
	svc.SetLink(a.Link)
	socket := filepath.Join(t.TempDir(), "agent.sock")
	runner, err := usersession.NewRunner(usersession.Config{Socket: socket, Exe: "/bin/false", Serve: svc.Serve, Logger: servertest.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		svc.Close() // the trays' connections: the runner waits for them
		runner.Close()
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agent, _ := tray.DialAgentAt(ctx, socket, servertest.DiscardLogger())
	notes := make(chan string, 8)
	asked := make(chan struct{}, 8)
	srv, err := tray.StartServer(tray.ServerOptions{Agent: agent, Notify: func(title, body string) { notes <- title + ": " + body },
		OnConsent: func() { asked <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	opened := make(chan string, 8)
	tr := tray.NewTray(agent, srv, func(u string) error { opened <- u; return nil }, nil)
	servertest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if !agent.Connected() {
			return errors.New("the tray does not see the agent connected")
		}
		return nil
	})

	// No zenity, no kdialog: the prompt asks on this user's tray.
	none := func(string) (string, error) { return "", exec.ErrNotFound }
	prompt := &consent.WithTray{Dialog: &consent.Dialog{Display: ":0", LookPath: none}, Tray: svc.Asker(uint32(os.Getuid()))}
	type answer struct {
		a   desksidev1.DesktopConsent_Answer
		err error
	}
	ask := func(ctx context.Context, control bool) <-chan answer {
		ch := make(chan answer, 1)
		go func() {
			a, err := prompt.Ask(ctx, session.ConsentRequest{Technician: "dana", Tier: 2, Ticket: "DS-7K3Q", Control: control, Timeout: session.DefaultConsentTimeout})
			ch <- answer{a, err}
		}()
		return ch
	}
	got := func(ch <-chan answer) answer {
		t.Helper()
		select {
		case a := <-ch:
			return a
		case <-time.After(15 * time.Second):
			t.Fatal("no answer within 15 s")
		}
		return answer{}
	}

	t.Log("a question: a notification, and the tray opens the consent view")
	q1 := ask(ctx, false)
	select {
	case n := <-notes:
		if n != "Deskside: dana (tier 2) wants to view your screen for ticket DS-7K3Q: Open Deskside to answer: Allow or Deny. No answer denies." {
			t.Fatalf("notification %q", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no desktop notification for the question")
	}
	select {
	case <-asked:
		tr.ConsentAsked()
	case <-time.After(5 * time.Second):
		t.Fatal("the page server did not report the question")
	}
	url := <-opened
	if url != srv.URL("consent") {
		t.Fatalf("the tray opened %q", url)
	}
	bctx, run, eval := startBrowser(t, chrome)
	run(30*time.Second, chromedp.Navigate(url), chromedp.WaitVisible(css(`[data-testid=consent-allow]`)))
	if got := eval(`document.querySelector('[data-testid=consent-text]').textContent`); got != "dana (tier 2) wants to view your screen for ticket DS-7K3Q." {
		t.Fatalf("question on the page: %q", got)
	}
	if got := eval(`document.querySelector('[data-testid=consent-ticket]').textContent`); got != "DS-7K3Q" {
		t.Fatalf("ticket on the page: %q", got)
	}
	if got := eval(`document.activeElement.dataset.testid`); got != "consent-deny" {
		t.Fatalf("focused: %q, want Deny", got)
	}
	if got := eval(`document.querySelector('[data-testid=consent-countdown]').textContent`); !strings.HasPrefix(got, "No answer in ") || !strings.HasSuffix(got, " s denies.") {
		t.Fatalf("countdown: %q", got)
	}
	if dir := os.Getenv("DESKSIDE_SCREENSHOTS"); dir != "" {
		sctx, scancel := context.WithTimeout(bctx, 20*time.Second)
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		scancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "consent-tray.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The page's calls need its cookie and Origin, as every other.
	if res, err := http.Post("http://"+srv.Addr()+"/api/consent", "application/json", strings.NewReader(`{"id":"1","answer":"allow"}`)); err != nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("an answer without the page's cookie and origin: %v %v", res.Status, err)
	}
	run(10*time.Second, chromedp.Click(css(`[data-testid=consent-allow]`)), chromedp.WaitVisible(css(`[data-testid=consent-closed]`)))
	if a := got(q1); a.err != nil || a.a != desksidev1.DesktopConsent_ANSWER_ALLOWED {
		t.Fatalf("Allow on the page: %v %v", a.a, a.err)
	}
	if got := eval(`document.querySelector('[data-testid=consent-closed-reason]').textContent`); got != traysvc.ClosedAllowed {
		t.Fatalf("after Allow the page says %q", got)
	}

	t.Log("the next question shows on the open page; Deny denies")
	q2 := ask(ctx, true)
	run(10*time.Second, chromedp.WaitVisible(css(`[data-testid=consent-deny]`)))
	if got := eval(`document.querySelector('[data-testid=consent-text]').textContent`); !strings.Contains(got, "wants to control your screen") {
		t.Fatalf("question on the page: %q", got)
	}
	run(10*time.Second, chromedp.Click(css(`[data-testid=consent-deny]`)), chromedp.WaitVisible(css(`[data-testid=consent-closed]`)))
	if a := got(q2); a.err != nil || a.a != desksidev1.DesktopConsent_ANSWER_DENIED {
		t.Fatalf("Deny on the page: %v %v", a.a, a.err)
	}

	t.Log("the session ends before an answer: the page says the request was withdrawn")
	sctx, end := context.WithCancel(ctx)
	q3 := ask(sctx, false)
	run(10*time.Second, chromedp.WaitVisible(css(`[data-testid=consent-allow]`)))
	end()
	if a := got(q3); !errors.Is(a.err, context.Canceled) {
		t.Fatalf("ended: %v %v", a.a, a.err)
	}
	run(10*time.Second, chromedp.WaitVisible(css(`[data-testid=consent-closed]`)))
	if got := eval(`document.querySelector('[data-testid=consent-closed-reason]').textContent`); got != traysvc.ClosedEnded {
		t.Fatalf("after the end the page says %q", got)
	}

	t.Log("the menu: Allow… opens the consent view, Deny denies")
	q4 := ask(ctx, false)
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if tr.State().Consent.ID == 0 {
			return errors.New("no question in the menu's state")
		}
		return nil
	})
	for len(opened) > 0 {
		<-opened
	}
	if err := tr.Click(ctx, tray.ItemAllow); err != nil {
		t.Fatal(err)
	}
	if u := <-opened; u != srv.URL("consent") {
		t.Fatalf("Allow… opened %q", u)
	}
	if err := tr.Click(ctx, tray.ItemDeny); err != nil {
		t.Fatal(err)
	}
	if a := got(q4); a.err != nil || a.a != desksidev1.DesktopConsent_ANSWER_DENIED {
		t.Fatalf("Deny in the menu: %v %v", a.a, a.err)
	}
	// The service's "closed" push clears the menu's question; until it
	// arrives a second Deny reaches the service, which refuses it.
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if tr.State().Consent.ID != 0 {
			return errors.New("the menu still shows a question")
		}
		return nil
	})
	if err := tr.Click(ctx, tray.ItemDeny); !errors.Is(err, tray.ErrNoConsent) {
		t.Fatalf("Deny without a question: %v", err)
	}
}
