package webtest

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/server/servertest"
)

// A page on another origin makes the signed-in browser call a streaming
// endpoint of the console: the relay answers 403, whatever the browser's
// CORS handling would have done afterwards.
func TestCrossOriginStreamingRefused(t *testing.T) {
	c := startConsole(t)
	c.signIn(t, "admin", servertest.AdminPassword)
	// Another origin (https://localhost:other-port) with a certificate the
	// browser accepts: the relay's own, which also covers localhost.
	cert, err := tls.LoadX509KeyPair(filepath.Join(c.relay.Dir, "server.pem"), filepath.Join(c.relay.Dir, "server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	evil := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!doctype html><title>elsewhere</title>")
	}))
	evil.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	evil.StartTLS()
	defer evil.Close()
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)

	// The response to a refused cross-origin call never reaches the page
	// (the browser blocks it), so read the status from the network events.
	sent := chromedp.Events(c.ctx, network.RequestWillBeSent)
	extra := chromedp.Events(c.ctx, network.ResponseReceivedExtraInfo)
	watchID := make(chan network.RequestID, 1)
	go func() {
		for ev, err := range sent {
			if err != nil {
				return
			}
			if strings.HasSuffix(ev.Request.URL, "/WatchDevices") {
				watchID <- ev.RequestID
				return
			}
		}
	}()
	statuses := make(chan network.EventResponseReceivedExtraInfo, 64)
	go func() {
		for ev, err := range extra {
			if err != nil {
				return
			}
			select {
			case statuses <- ev:
			default:
			}
		}
	}()
	c.run(t, 20*time.Second, chromedp.Navigate(evilURL))
	api := strings.TrimSuffix(c.url, "/") + "/deskside.v1.ConsoleService/WatchDevices"
	// text/plain keeps it a "simple" request: no preflight, so the POST
	// itself reaches the relay, with the browser's Origin header.
	js := fmt.Sprintf(`fetch(%q, {method: "POST", mode: "no-cors", credentials: "include", headers: {"Content-Type": "text/plain"}, body: "{}"}).then(() => "sent", e => "error: " + e)`, api)
	res := value(t, c, 10*time.Second, chromedp.Evaluate[string](js, func(p *runtime.EvaluateParams) { t := true; p.AwaitPromise = &t }))
	t.Logf("fetch from %s: %s", evilURL, res)
	deadline := time.After(10 * time.Second)
	var id network.RequestID
	select {
	case id = <-watchID:
	case <-deadline:
		t.Fatal("the browser never sent the cross-origin request")
	}
	for {
		select {
		case ev := <-statuses:
			if ev.RequestID != id {
				continue
			}
			if ev.StatusCode != http.StatusForbidden {
				t.Fatalf("cross-origin WatchDevices answered %d, want 403", ev.StatusCode)
			}
			return
		case <-deadline:
			t.Fatal("no response seen for the cross-origin request")
		}
	}
}

// Five wrong passwords lock the account: the right one is then refused
// with the answer a wrong one gets, which mentions the lock (the relay
// does not say which it was).
func TestSignInLockout(t *testing.T) {
	c := startConsole(t)
	c.run(t, 20*time.Second, chromedp.Navigate(c.url), chromedp.WaitVisible(css(`[data-testid=login-name]`)))
	attempt := func(pw string) string {
		t.Helper()
		c.run(t, 20*time.Second,
			chromedp.SetValue(css(`[data-testid=login-name]`), "admin"),
			chromedp.SetValue(css(`[data-testid=login-password]`), pw),
			chromedp.Evaluate[chromedp.Void](`(() => { const e = document.querySelector('[data-testid=login-error]'); if (e) e.textContent = ''; })()`),
			chromedp.Click(css(`[data-testid=login-submit]`)),
			chromedp.Poll[chromedp.Void](`(() => { const e = document.querySelector('[data-testid=login-error]'); return e && e.textContent.trim() !== ''; })()`),
		)
		return value(t, c, 5*time.Second, chromedp.Text(css(`[data-testid=login-error]`)))
	}
	var wrong string
	for i := range auth.MaxFailures {
		if wrong = attempt(fmt.Sprintf("wrong-password-%d", i)); !strings.Contains(strings.ToLower(wrong), "wrong name or password") {
			t.Fatalf("wrong password %d: %q", i+1, wrong)
		}
	}
	if msg := attempt(servertest.AdminPassword); msg != wrong || !strings.Contains(msg, "locked") {
		t.Fatalf("right password after %d failures: %q, want the answer to a wrong one (%q), which mentions the lock", auth.MaxFailures, msg, wrong)
	}
}
