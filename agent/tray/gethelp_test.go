package tray_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc/metadata"

	"github.com/deskside/deskside/agent/diag"
	"github.com/deskside/deskside/agent/health"
	"github.com/deskside/deskside/agent/inventory"
	"github.com/deskside/deskside/agent/tray"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// desktop is the "screen" the page captures: a window with lines of
// "text" and a document of 4-pixel black and white squares (which no blur
// leaves intact) at (80,100)-(440,340).
func desktop(t testing.TB) []byte {
	const w, h = 960, 600
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	fill := func(r image.Rectangle, c color.NRGBA) {
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				img.SetNRGBA(x, y, c)
			}
		}
	}
	fill(img.Rect, color.NRGBA{0x3b, 0x5b, 0x8c, 0xff})
	fill(image.Rect(40, 40, 920, 570), color.NRGBA{0xff, 0xff, 0xff, 0xff})
	fill(image.Rect(40, 40, 920, 76), color.NRGBA{0xe5, 0xe7, 0xeb, 0xff})
	for i, c := range []color.NRGBA{{0xef, 0x44, 0x44, 0xff}, {0xf5, 0x9e, 0x0b, 0xff}, {0x22, 0xc5, 0x5e, 0xff}} {
		fill(image.Rect(56+i*22, 52, 70+i*22, 66), c)
	}
	for y := 100; y < 540; y += 28 {
		fill(image.Rect(480, y, 880-(y*37)%160, y+10), color.NRGBA{0x9c, 0xa3, 0xaf, 0xff})
	}
	for y := 100; y < 340; y++ {
		for x := 80; x < 440; x++ {
			c := color.NRGBA{0xf8, 0xf8, 0xf8, 0xff}
			if (x/4+y/4)%2 == 0 {
				c = color.NRGBA{0x10, 0x20, 0x30, 0xff}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	fill(image.Rect(80, 380, 440, 392), color.NRGBA{0x37, 0x41, 0x51, 0xff})
	fill(image.Rect(80, 408, 360, 420), color.NRGBA{0x9c, 0xa3, 0xaf, 0xff})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// spread is the standard deviation of the red channel over r.
func spread(img image.Image, r image.Rectangle) float64 {
	var sum, sq, n float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			v, _, _, _ := img.At(x, y).RGBA()
			f := float64(v >> 8)
			sum, sq, n = sum+f, sq+f*f, n+1
		}
	}
	m := sum / n
	return math.Sqrt(sq/n - m*m)
}

func css(s string) chromedp.CSS { return chromedp.CSS(s) }

// chromium returns the browser to drive, or skips (fails under CI); it
// skips under -short.
func chromium(t *testing.T) string {
	t.Helper()
	testkit.Heavy(t, "starts Chromium")
	chrome := os.Getenv("DESKSIDE_CHROMIUM")
	if chrome == "" {
		chrome = "/usr/bin/chromium"
	}
	_, err := os.Stat(chrome)
	testkit.Need(t, "Chromium", err, "install the Debian package chromium (make deps) or set DESKSIDE_CHROMIUM")
	return chrome
}

// startBrowser starts headless Chromium for t and returns its tab, a
// function running actions and one evaluating a string expression.
func startBrowser(t *testing.T, chrome string) (context.Context, func(time.Duration, ...chromedp.Action[chromedp.Void]), func(string) string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1000, 1100))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelB(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	run := func(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, timeout)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("browser: %v", err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("browser: %s: %v", js, err)
		}
		return v
	}
	return bctx, run, eval
}

// TestGetHelpPage drives the Get help page in Chromium against a real
// relay and a real enrolled agent link: KB suggestions first, "this
// solved it" counted, a screenshot blurred in the page, the ticket in the
// technicians' queue within 2 s with the snapshot, the code shown; a
// technician's reply and pick-up reach My requests live.
func TestGetHelpPage(t *testing.T) {
	chrome := chromium(t)

	r := servertest.Start(t, servertest.Options{})
	st := r.Enroll(t, "alice-laptop")
	var agent *tray.LinkAgent
	pushes := make(chan *desksidev1.HelpUpdate, 64)
	a := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: inventory.New(nil), Health: health.NewSampler(nil, health.Options{}), HealthInterval: 200 * time.Millisecond, Hostname: "alice-laptop",
		OnHelpUpdate: func(u *desksidev1.HelpUpdate) { pushes <- u },
	})
	agent = tray.NewLinkAgent(a.Link, &desksidev1.HelpUser{Login: "alice", Name: "Alice Example"})
	agent.Triage = diag.New(diag.Options{RelayHost: st.Relay, RootCAs: r.CAPool()})
	agent.TriageBudget = time.Second // the test types faster than a user
	go func() {
		for u := range pushes {
			agent.Push(u)
		}
	}()
	servertest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if _, err := r.Srv.Store().GetInventory(context.Background(), st.DeviceID); err != nil {
			return err
		}
		_, err := r.Srv.Store().LatestHealth(context.Background(), st.DeviceID)
		return err
	})

	shot := desktop(t)
	var notified []string
	notes := make(chan string, 8)
	srv, err := tray.StartServer(tray.ServerOptions{Agent: agent, Screenshot: func() ([]byte, error) { return shot, nil },
		Notify: func(title, body string) { notes <- title + ": " + body }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	_, cctx := r.Admin(t)
	conn := r.Dial(t)
	md, _ := metadata.FromOutgoingContext(cctx)
	kctx := metadata.NewOutgoingContext(cctx, md)
	kb := desksidev1.NewKnowledgeServiceClient(conn)
	tickets := desksidev1.NewTicketServiceClient(conn)
	art, err := kb.CreateArticle(kctx, &desksidev1.CreateArticleRequest{Title: "Printer shows offline",
		BodyMarkdown: "1. Turn the **printer** off and on.\n2. Check its cable.", Category: "printing"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kb.PublishArticle(kctx, &desksidev1.PublishArticleRequest{Article: &desksidev1.ArticleRef{Id: art.GetArticle().GetId()}}); err != nil {
		t.Fatal(err)
	}
	wctx, stopWatch := context.WithCancel(cctx)
	defer stopWatch()
	watch, err := tickets.WatchTickets(wctx, &desksidev1.WatchTicketsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	created := make(chan *desksidev1.WatchTicketsResponse, 4)
	go func() {
		for {
			ev, err := watch.Recv()
			if err != nil {
				return
			}
			if ev.GetKind() == desksidev1.TicketEventKind_TICKET_EVENT_KIND_CREATED {
				created <- ev
			}
		}
	}()

	bctx, run, eval := startBrowser(t, chrome)

	t.Log("the article that matches shows first; \"this solved it\" ends the flow and is counted")
	run(30*time.Second,
		chromedp.Navigate(srv.URL("")),
		chromedp.WaitVisible(css(`[data-testid=description]`)),
		chromedp.WaitVisible(css(`[data-testid=conn].ok`)),
		chromedp.SendKeys(css(`[data-testid=description]`), "The printer is offline"),
		chromedp.WaitVisible(css(`[data-testid=article]`)),
	)
	if got := eval(`document.querySelector('[data-testid=suggestions]').innerText`); !strings.Contains(got, "Printer shows offline") {
		t.Fatalf("suggestions: %q", got)
	}
	if strings.Contains(eval(`location.href`), "k=") {
		t.Fatal("the launch secret stayed in the address bar")
	}
	run(10*time.Second, chromedp.Click(css(`[data-testid=article-solved]`)), chromedp.WaitVisible(css(`[data-testid=solved]`)))
	if got, err := kb.GetArticle(kctx, &desksidev1.GetArticleRequest{Article: &desksidev1.ArticleRef{Id: art.GetArticle().GetId()}}); err != nil || got.GetArticle().GetHelped() != 1 {
		t.Fatalf("helped: %v %v", got.GetArticle().GetHelped(), err)
	}

	t.Log("a request with a blurred screenshot")
	run(30*time.Second,
		chromedp.Navigate(srv.URL("")),
		chromedp.WaitVisible(css(`[data-testid=description]`)),
		chromedp.SetValue(css(`[data-testid=category]`), "printing"),
		chromedp.SendKeys(css(`[data-testid=description]`), "The printer on the 2nd floor says offline since this morning."),
		chromedp.WaitVisible(css(`[data-testid=article]`)),
		chromedp.Click(css(`[data-testid=take-shot]`)),
		chromedp.WaitVisible(css(`[data-testid=shot]`)),
	)
	// Drag over image pixels (80,100)-(440,340), as the user does with the mouse.
	eval(`(() => {
		const c = document.querySelector('[data-testid=shot]'), r = c.getBoundingClientRect();
		const at = (x, y) => ({ clientX: r.left + x * r.width / c.width, clientY: r.top + y * r.height / c.height, bubbles: true, pointerId: 1 });
		c.dispatchEvent(new PointerEvent('pointerdown', at(80, 100)));
		c.dispatchEvent(new PointerEvent('pointermove', at(260, 220)));
		c.dispatchEvent(new PointerEvent('pointerup', at(440, 340)));
		return '';
	})()`)
	run(10*time.Second, chromedp.WaitVisible(css(`[data-testid=undo-blur]`)), chromedp.SendKeys(css(`[data-testid=email]`), "alice@example.com"))
	if dir := os.Getenv("DESKSIDE_SCREENSHOTS"); dir != "" {
		ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "gethelp.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	clicked := time.Now()
	run(10*time.Second, chromedp.Click(css(`[data-testid=send]`)))
	var ev *desksidev1.WatchTicketsResponse
	select {
	case ev = <-created:
		t.Logf("Get help submitted → ticket in the queue: %v", time.Since(clicked).Round(time.Millisecond))
	case <-time.After(2 * time.Second):
		t.Fatal("no ticket in the queue within 2 s of Send")
	}
	run(10*time.Second, chromedp.WaitVisible(css(`[data-testid=code]`)))
	code := ev.GetTicket().GetCode()
	if got := eval(`document.querySelector('[data-testid=code]').textContent`); got != code {
		t.Fatalf("page shows %q, the queue has %q", got, code)
	}
	got, err := tickets.GetTicket(cctx, &desksidev1.GetTicketRequest{Code: code})
	if err != nil {
		t.Fatal(err)
	}
	if tk := got.GetTicket(); !tk.GetHasSnapshot() || tk.GetCategory() != "printing" || tk.GetRequester().GetEmail() != "alice@example.com" ||
		tk.GetRequester().GetDeviceId() != st.DeviceID || tk.GetCreatedBy() != "requester <alice>" {
		t.Fatalf("ticket: %v", tk)
	}
	var triage bool
	for _, e := range got.GetTimeline() {
		triage = triage || (e.GetKind() == desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_NOTE && strings.Contains(e.GetBody(), "disk.space"))
	}
	if !triage {
		t.Fatalf("no triage report on the ticket: %v", got.GetTimeline())
	}
	atts, err := tickets.ListTicketAttachments(cctx, &desksidev1.ListTicketAttachmentsRequest{Code: code, WithData: true})
	if err != nil || len(atts.GetAttachments()) == 0 || atts.GetAttachments()[0].GetName() != "screenshot.png" {
		t.Fatalf("attachments: %v %v", atts, err)
	}
	sent, err := png.Decode(bytes.NewReader(atts.GetAttachments()[0].GetData()))
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := png.Decode(bytes.NewReader(shot))
	inside, outside := image.Rect(120, 140, 400, 300), image.Rect(460, 90, 900, 560)
	if sent.Bounds() != orig.Bounds() {
		t.Fatalf("sent %v, captured %v", sent.Bounds(), orig.Bounds())
	}
	if o, s := spread(orig, inside), spread(sent, inside); o < 50 || s > 0.1*o {
		t.Fatalf("the region is not blurred: spread %.1f before, %.1f sent", o, s)
	}
	if o, s := spread(orig, outside), spread(sent, outside); math.Abs(o-s) > 1 {
		t.Fatalf("outside the region the image changed: spread %.1f before, %.1f sent", o, s)
	}

	t.Log("My requests: a technician's reply arrives live, with the pick-up, and a desktop notification")
	run(10*time.Second, chromedp.Click(css(`[data-testid=nav-requests]`)), chromedp.WaitVisible(css(`[data-testid=request]`)))
	if _, err := tickets.ReplyTicket(cctx, &desksidev1.ReplyTicketRequest{Code: code, Text: "Is the light on the printer green?"}); err != nil {
		t.Fatal(err)
	}
	run(10*time.Second, chromedp.WaitVisible(css(`[data-testid=entry].tech`)), chromedp.WaitVisible(css(`[data-testid=picked]`)))
	if got := eval(`document.querySelector('[data-testid=request]').innerText`); !strings.Contains(got, "Is the light on the printer green?") ||
		!strings.Contains(got, "admin picked it up") || !strings.Contains(got, code) {
		t.Fatalf("my requests: %q", got)
	}
	select {
	case n := <-notes:
		notified = append(notified, n)
	case <-time.After(5 * time.Second):
		t.Fatal("no desktop notification for the reply")
	}
	if !strings.Contains(notified[0], "replied on "+code) || !strings.Contains(notified[0], "light on the printer") {
		t.Fatalf("notification %q", notified[0])
	}

	t.Log("the user replies from the page; it is on the ticket")
	run(10*time.Second,
		chromedp.SendKeys(css(`[data-testid=reply-text]`), "Yes, green."),
		chromedp.Click(css(`[data-testid=reply-send]`)),
		chromedp.WaitVisible(css(`[data-testid=entry].user`)),
	)
	full, err := tickets.GetTicket(cctx, &desksidev1.GetTicketRequest{Code: code})
	if err != nil {
		t.Fatal(err)
	}
	var replied bool
	for _, e := range full.GetTimeline() {
		replied = replied || strings.Contains(e.GetBody(), "Yes, green.")
	}
	if !replied {
		t.Fatalf("the user's reply is not on the ticket: %v", full.GetTimeline())
	}

	t.Log("chat: a technician's line arrives live with a notification; the user's line is a CHAT entry, in order")
	if n := eval(`String(document.querySelectorAll('[data-testid=chat-line]').length)`); n != "0" {
		t.Fatalf("%s chat lines before any chat", n)
	}
	if _, err := tickets.SendChat(cctx, &desksidev1.SendChatRequest{Code: code, Text: "I'm looking at it now"}); err != nil {
		t.Fatal(err)
	}
	run(10*time.Second, chromedp.WaitVisible(css(`[data-testid=chat-line].tech`)))
	select {
	case n := <-notes:
		if !strings.Contains(n, "replied on "+code) || !strings.Contains(n, "looking at it now") {
			t.Fatalf("notification for the chat line %q", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no desktop notification for the technician's chat line")
	}
	run(10*time.Second,
		chromedp.SendKeys(css(`[data-testid=chat-text]`), "Thanks, I'll wait.\r"),
		chromedp.WaitVisible(css(`[data-testid=chat-line].user`)),
	)
	if _, err := tickets.SendChat(cctx, &desksidev1.SendChatRequest{Code: code, Text: "Found it: the queue was paused."}); err != nil {
		t.Fatal(err)
	}
	chatLines := `[...document.querySelectorAll('[data-testid=chat-line]')].map((e) => e.className.split(' ')[0] + ': ' + e.lastChild.textContent).join('|')`
	wantChat := "tech: I'm looking at it now|user: Thanks, I'll wait.|tech: Found it: the queue was paused."
	servertest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if got := eval(chatLines); got != wantChat {
			return fmt.Errorf("chat on the page: %q", got)
		}
		return nil
	})
	if got := eval(`document.querySelector('.entries').innerText`); strings.Contains(got, "looking at it now") {
		t.Fatalf("a chat line on the reply thread: %q", got)
	}
	full, err = tickets.GetTicket(cctx, &desksidev1.GetTicketRequest{Code: code})
	if err != nil {
		t.Fatal(err)
	}
	var chats []string
	for _, e := range full.GetTimeline() {
		if e.GetKind() == desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_CHAT {
			chats = append(chats, e.GetAuthor()+": "+e.GetBody())
		}
	}
	if strings.Join(chats, "|") != "admin: I'm looking at it now|requester <alice>: Thanks, I'll wait.|admin: Found it: the queue was paused." {
		t.Fatalf("chat on the ticket's timeline: %v", chats)
	}
	if dir := os.Getenv("DESKSIDE_SCREENSHOTS"); dir != "" {
		ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "myrequests.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Log("a remote session shows on the page at once, and the user ends it there")
	if eval(`String(document.querySelector('[data-testid=session]').checkVisibility())`) != "false" {
		t.Fatal("the session banner shows without a session")
	}
	ended := make(chan struct{})
	agent.SetSession(tray.SessionState{Active: true, Technician: "Dana (tier 2)", Control: true}, func(context.Context) error {
		close(ended)
		agent.SetSession(tray.SessionState{}, nil)
		return nil
	})
	run(10*time.Second, chromedp.WaitVisible(css(`[data-testid=session]`)))
	if got := eval(`document.querySelector('[data-testid=session]').innerText`); !strings.Contains(got, "Dana (tier 2) is controlling your screen") {
		t.Fatalf("session banner: %q", got)
	}
	run(10*time.Second, chromedp.Click(css(`[data-testid=end-session]`)), chromedp.WaitNotVisible(css(`[data-testid=session]`)))
	select {
	case <-ended:
	default:
		t.Fatal("End session on the page did not end the session")
	}
}

// TestGetHelpPageWithoutAgent: when the tray cannot reach the agent, the
// page says so at once and Send shows why nothing was sent.
func TestGetHelpPageWithoutAgent(t *testing.T) {
	chrome := chromium(t)
	srv, err := tray.StartServer(tray.ServerOptions{Agent: tray.Unavailable{}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, run, eval := startBrowser(t, chrome)
	run(30*time.Second,
		chromedp.Navigate(srv.URL("")),
		chromedp.WaitVisible(css(`[data-testid=agent-note]`)),
		chromedp.SendKeys(css(`[data-testid=description]`), "Nothing works"),
		chromedp.Click(css(`[data-testid=send]`)),
		chromedp.WaitVisible(css(`[data-testid=help-error]`)),
	)
	if got := eval(`document.querySelector('[data-testid=help-error]').textContent`); !strings.Contains(got, "cannot be reached") {
		t.Fatalf("error shown: %q", got)
	}
	if got := eval(`document.querySelector('[data-testid=conn]').textContent`); got != "Agent not reachable" {
		t.Fatalf("connection state: %q", got)
	}
}

// lockedBuffer is a bytes.Buffer safe for the server's logger and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestGetHelpPageRefusesOtherOrigins: a page of another origin on the
// same machine (another port of 127.0.0.1: the same site, so the browser
// sends the SameSite=Strict cookie) calls the tray from Chromium after
// the user opened Get help; every call is refused by the tray itself.
func TestGetHelpPageRefusesOtherOrigins(t *testing.T) {
	chrome := chromium(t)
	var log lockedBuffer
	srv, err := tray.StartServer(tray.ServerOptions{Agent: tray.Unavailable{}, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	trayURL := "http://" + srv.Addr()
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>evil</title><script>
const tray = %q;
Promise.allSettled([
  fetch(tray + '/api/file', {method: 'POST', mode: 'no-cors', credentials: 'include', headers: {'Content-Type': 'text/plain'}, body: '{"description":"csrf"}'}),
  fetch(tray + '/api/requests', {mode: 'no-cors', credentials: 'include'}),
  fetch(tray + '/api/state', {credentials: 'include'}),
]).then(() => { document.title = 'done'; });
</script>`, trayURL)
	}))
	defer evil.Close()
	_, run, eval := startBrowser(t, chrome)
	run(30*time.Second, chromedp.Navigate(srv.URL("")), chromedp.WaitVisible(css(`[data-testid=description]`)))
	run(30*time.Second, chromedp.Navigate(evil.URL), chromedp.Poll[chromedp.Void](`document.title === 'done'`))
	if eval(`document.title`) != "done" {
		t.Fatal("the other page did not finish")
	}
	got := log.String()
	t.Log(got)
	for _, want := range []string{`why="another origin" path=/api/file`, `why="cross-site request" path=/api/requests`, `path=/api/state`} {
		if !strings.Contains(got, want) {
			t.Errorf("no refusal %q in the tray's log:\n%s", want, got)
		}
	}
}
