package webtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/deskside/deskside/agent/health"
	"github.com/deskside/deskside/agent/inventory"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// shotPNG is a real PNG of w×h: four colour bands, so a screenshot of the
// page shows it was drawn from its bytes.
func shotPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	bands := []color.RGBA{{R: 36, G: 87, B: 197, A: 255}, {R: 240, G: 240, B: 240, A: 255}, {R: 194, G: 38, B: 29, A: 255}, {R: 21, G: 128, B: 61, A: 255}}
	for y := range h {
		for x := range w {
			img.Set(x, y, bands[y*len(bands)/h])
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fullShot is shot of the whole page, not only the window.
func fullShot(t *testing.T, c *console, name string) {
	t.Helper()
	dir := os.Getenv("DESKSIDE_TICKET_SHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	png := value(t, c, 20*time.Second, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTicketGetHelpChat: a user files a Get help request through a real
// agent (mTLS, agent/link) with a screenshot and a triage report; on the
// ticket page the technician sees the screenshot (drawn from its bytes
// through a blob URL) and the triage results with their states, problems
// first; the user's public reply appears live; the technician's chat line
// reaches the agent as a push; the user's chat answer appears live (no
// reload), after it, in the chat and on the timeline, apart from the
// technician's; off-screen it raises the unread badge and a desktop
// notification (permission granted; never asked without a click); and the
// remote-session viewer opened from the ticket shows the same chat.
func TestTicketGetHelpChat(t *testing.T) {
	c := startConsole(t)
	log := servertest.DiscardLogger()
	st := c.relay.Enroll(t, "reception-pc")
	pushes := make(chan *desksidev1.HelpUpdate, 32)
	agent := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: inventory.New(log), Health: health.NewSampler(log, health.Options{}), HealthInterval: 200 * time.Millisecond, Hostname: "reception-pc",
		OnHelpUpdate: func(u *desksidev1.HelpUpdate) { pushes <- u },
	})
	servertest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if !agent.Link.Connected() {
			return errors.New("agent not connected yet")
		}
		return nil
	})
	dev := st.DeviceID
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	shotBytes := shotPNG(t, 480, 270)
	triage := &desksidev1.CheckReport{Overall: desksidev1.CheckStatus_CHECK_STATUS_FAIL, Results: []*desksidev1.CheckResult{
		{Name: "time.sync", Status: desksidev1.CheckStatus_CHECK_STATUS_PASS, Summary: "clock within 40 ms"},
		{Name: "network.dns", Status: desksidev1.CheckStatus_CHECK_STATUS_FAIL, Summary: "no resolver answers", Hint: "Check the VPN <b>client</b>",
			Evidence: []*desksidev1.CheckEvidence{{Key: "resolvers", Value: "10.0.0.53"}}},
		{Name: "disk.space", Status: desksidev1.CheckStatus_CHECK_STATUS_WARN, Summary: "C: 93% used"},
	}}
	filed, err := agent.Link.FileHelpRequest(ctx, &desksidev1.FileHelpRequest{
		User: &desksidev1.HelpUser{Login: "alice", Name: "Alice Liddell"}, Category: "network",
		Subject: "No internet since lunch", Description: "Web pages time out. <img src=x onerror=alert(1)>",
		ScreenshotPng: shotBytes, Triage: triage,
	})
	if err != nil {
		t.Fatal(err)
	}
	code := filed.GetCode()

	c.signIn(t, "admin", servertest.AdminPassword)
	c.run(t, 30*time.Second,
		chromedp.Navigate(c.url+"#/tickets/"+code),
		chromedp.WaitVisible(css(`[data-testid=tk-screenshot-img]`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-testid=tk-screenshot-img]').complete && document.querySelector('[data-testid=tk-screenshot-img]').naturalWidth === 480`),
		chromedp.WaitVisible(css(`[data-testid=tk-triage] [data-testid=diag-result]`)),
		chromedp.WaitVisible(css(`[data-testid=chat-empty]`)),
	)
	if src := eval[string](t, c, `document.querySelector('[data-testid=tk-screenshot-img]').src`); !strings.HasPrefix(src, "blob:") {
		t.Errorf("the screenshot's src is %q, want a blob URL", src)
	}
	if got := eval[string](t, c, `[...document.querySelectorAll('[data-testid=tk-triage] [data-testid=diag-result]')].map(r => r.dataset.check + '=' + r.dataset.status).join()`); got != "network.dns=fail,disk.space=warn,time.sync=pass" {
		t.Errorf("triage results %q, want problems first with their states", got)
	}
	if got := eval[string](t, c, `document.querySelector('[data-testid=tk-triage-overall]').dataset.status`); got != "fail" {
		t.Errorf("triage overall %q", got)
	}
	// The user's text is only text: no element was made of it.
	if n := eval[int](t, c, `document.querySelectorAll('.page-ticket img:not([data-testid=tk-screenshot-img]), .page-ticket b').length`); n != 0 {
		t.Errorf("%d elements made of the user's text", n)
	}
	if !strings.Contains(eval[string](t, c, `document.querySelector('[data-testid=tk-triage]').innerText`), "Check the VPN <b>client</b>") {
		t.Error("the failing check's hint is not shown as text")
	}
	// Nothing asked for notifications on its own.
	if p := eval[string](t, c, `Notification.permission`); p != "default" {
		t.Errorf("notification permission %q before any click", p)
	}
	if !eval[bool](t, c, `!document.querySelector('[data-testid=chat-notify]').hidden`) {
		t.Error("no Notify me button while the permission is not decided")
	}

	// The user's public reply from Get help appears live.
	if _, err := agent.Link.ReplyToRequest(ctx, &desksidev1.ReplyToRequest{Login: "alice", Code: code, Text: "It also fails on my phone's hotspot."}); err != nil {
		t.Fatal(err)
	}
	c.run(t, 10*time.Second, chromedp.WaitVisible(css(`[data-testid=tk-entry][data-kind=reply][data-from=requester]`)))
	if got := eval[string](t, c, `document.querySelector('[data-testid=tk-entry][data-kind=reply]').innerText`); !strings.Contains(got, "alice requester replied") || !strings.Contains(got, "It also fails on my phone's hotspot.") {
		t.Errorf("the requester's reply: %q", got)
	}

	// The technician chats; the agent's push carries the line.
	c.run(t, 20*time.Second,
		chromedp.SendKeys(css(`[data-testid=chat-text]`), "Hi Alice, I'm looking at it now."),
		chromedp.Click(css(`[data-testid=chat-send]`)),
		chromedp.WaitVisible(css(`[data-testid=chat-line][data-from=technician]`)),
	)
	for got := false; !got; {
		select {
		case u := <-pushes:
			if e := u.GetEntry(); e.GetKind() == "chat" {
				if e.GetText() != "Hi Alice, I'm looking at it now." || e.GetTechnician() != "admin" || u.GetLogin() != "alice" {
					t.Errorf("chat push: %v", u)
				}
				got = true
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the agent got no push of the chat line")
		}
	}

	// Off-screen, with notifications allowed: the requester's answer
	// raises the badge and a notification, and shows without a reload.
	c.run(t, 10*time.Second, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: "notifications"}, Setting: browser.PermissionSettingGranted,
			Origin: strings.TrimSuffix(c.url, "/"),
		})
		return err
	}))
	_ = value(t, c, 10*time.Second, chromedp.Evaluate[bool](`(() => {
		window.__notes = [];
		const N = window.Notification;
		window.Notification = new Proxy(N, {
			construct(target, args) { window.__notes.push(args[0] + '|' + (args[1] && args[1].body)); return Reflect.construct(target, args); },
			get(target, k) { const v = Reflect.get(target, k); return typeof v === 'function' ? v.bind(target) : v; },
		});
		document.body.style.paddingBottom = '3000px';
		window.scrollTo(0, document.documentElement.scrollHeight);
		return true;
	})()`))
	c.run(t, 5*time.Second, chromedp.Sleep(300*time.Millisecond)) // the observer sees the chat leave the screen
	sentAt := time.Now()
	if _, err := agent.Link.ReplyToRequest(ctx, &desksidev1.ReplyToRequest{Login: "alice", Code: code, Text: "Thanks! The Wi-Fi icon shows a cross.", Chat: true}); err != nil {
		t.Fatal(err)
	}
	c.run(t, 10*time.Second,
		chromedp.WaitVisible(css(`[data-testid=chat-line][data-from=requester]`)),
		chromedp.WaitVisible(css(`[data-testid=chat-unread]`)),
	)
	t.Logf("the requester's chat line showed %v after it was sent", time.Since(sentAt).Round(time.Millisecond))
	if got := eval[string](t, c, `document.querySelector('[data-testid=chat-unread]').dataset.count`); got != "1" {
		t.Errorf("unread count %q, want 1", got)
	}
	if got := eval[string](t, c, `window.__notes.join()`); got != code+": alice wrote|Thanks! The Wi-Fi icon shows a cross." {
		t.Errorf("notifications %q", got)
	}
	if n := eval[int](t, c, `performance.getEntriesByType('navigation').length`); n != 1 {
		t.Errorf("the page navigated %d times", n)
	}
	// In order, in the chat and on the timeline, requester apart from technician.
	if got := eval[string](t, c, `[...document.querySelectorAll('[data-testid=chat-line]')].map(l => l.dataset.from + ':' + l.querySelector('.chat-body').textContent).join('\n')`); got != "technician:Hi Alice, I'm looking at it now.\nrequester:Thanks! The Wi-Fi icon shows a cross." {
		t.Errorf("chat lines:\n%s", got)
	}
	if got := eval[string](t, c, `[...document.querySelectorAll('[data-testid=tk-entry][data-kind=chat]')].map(l => l.dataset.from + ':' + l.innerText.replace(/\s+/g, ' ').trim()).join('\n')`); !strings.Contains(got, "technician:admin technician chatted") || !strings.Contains(got, "requester:alice requester chatted") || strings.Index(got, "technician:") > strings.Index(got, "requester:") {
		t.Errorf("timeline chat entries:\n%s", got)
	}
	if eval[string](t, c, `getComputedStyle(document.querySelector('.tk-chat-requester')).backgroundColor`) == eval[string](t, c, `getComputedStyle(document.querySelector('.tk-chat-tech')).backgroundColor`) {
		t.Error("the requester's chat lines look like the technician's")
	}
	// The badge takes the technician to the chat and clears.
	c.run(t, 10*time.Second,
		chromedp.Click(css(`[data-testid=chat-unread]`)),
		chromedp.WaitNotVisible(css(`[data-testid=chat-unread]`)),
		chromedp.Evaluate[chromedp.Void](`document.body.style.paddingBottom = ''; window.scrollTo(0, 0)`),
	)
	shot(t, c, "ticket-gethelp-chat.png")
	fullShot(t, c, "ticket-gethelp-chat-full.png")

	// The remote-session viewer opened from the ticket keeps its chat.
	href := eval[string](t, c, `document.querySelector('[data-testid=tk-remote-session]').getAttribute('href')`)
	if want := fmt.Sprintf("#/devices/%s/session?ticket=%s", dev, code); href != want {
		t.Errorf("remote session link %q, want %q", href, want)
	}
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=tk-remote-session]`)),
		chromedp.WaitVisible(css(`[data-testid=session-chat] [data-testid=chat-line][data-from=requester]`)),
	)
	if _, err := agent.Link.ReplyToRequest(ctx, &desksidev1.ReplyToRequest{Login: "alice", Code: code, Text: "Rebooted, same thing.", Chat: true}); err != nil {
		t.Fatal(err)
	}
	c.run(t, 10*time.Second, chromedp.Poll[chromedp.Void](`document.querySelectorAll('[data-testid=session-chat] [data-testid=chat-line]').length === 3`))
	c.run(t, 20*time.Second,
		chromedp.SendKeys(css(`[data-testid=session-chat] [data-testid=chat-text]`), "Thanks, I see it."),
		chromedp.Click(css(`[data-testid=session-chat] [data-testid=chat-send]`)),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('[data-testid=session-chat] [data-testid=chat-line]').length === 4`),
	)
	shot(t, c, "session-chat.png")
}
