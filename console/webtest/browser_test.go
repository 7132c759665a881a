package webtest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deskside/deskside/console/web"
	"github.com/deskside/deskside/internal/pemfile"
	"github.com/deskside/deskside/internal/testkit"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
)

// chromiumPath returns the browser to drive, or skips (fails under CI).
// It skips under -short.
func chromiumPath(t testing.TB) string {
	t.Helper()
	testkit.Heavy(t, "starts Chromium")
	p := os.Getenv("DESKSIDE_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	_, err := os.Stat(p)
	testkit.Need(t, "Chromium", err, "install the Debian package chromium (make deps) or set DESKSIDE_CHROMIUM")
	return p
}

// console is a relay serving the real embedded console, and a browser
// that trusts exactly the relay's server key.
type console struct {
	relay *servertest.Relay
	url   string
	ctx   context.Context // the browser tab
}

func startConsole(t testing.TB) *console {
	t.Helper()
	return startConsoleWith(t, nil)
}

// startConsoleWith is startConsole with the relay's configuration changed
// by modify (nil: defaults).
func startConsoleWith(t testing.TB, modify func(*server.Config)) *console {
	t.Helper()
	return startConsoleOpts(t, servertest.Options{Modify: modify})
}

// startConsoleOpts is startConsole with the relay started with o (its
// web console always on).
func startConsoleOpts(t testing.TB, o servertest.Options) *console {
	t.Helper()
	chrome := chromiumPath(t)
	o.WebFiles = web.Files()
	r := servertest.Start(t, o)
	leaf, err := pemfile.ReadCertificate(filepath.Join(r.Dir, "server.pem"))
	if err != nil {
		t.Fatal(err)
	}
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// Start the browser now (without a timeout: the first call's context
	// owns the browser) so start-up is not billed to the first step.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return &console{relay: r, url: "https://" + r.Srv.WebAddr().String() + "/", ctx: ctx}
}

// run executes browser actions in order with a timeout.
func (c *console) run(t testing.TB, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	for i, a := range actions {
		if err := chromedp.Do(ctx, a); err != nil {
			t.Fatalf("browser: step %d of %d: %v\n%s", i+1, len(actions), err, c.where())
		}
	}
}

// where is the page's address and the start of its text, for a failure
// message (read with a fresh deadline: the step's may be spent).
func (c *console) where() string {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + (document.body ? document.body.innerText.slice(0, 600) : "(no body)")`))
	if err != nil {
		return "the page could not be read: " + err.Error()
	}
	return "the page was at " + v
}

// value runs one action that returns a value.
func value[T any](t testing.TB, c *console, timeout time.Duration, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// css is shorthand for a CSS selector.
func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// signIn signs in through the sign-in page.
func (c *console) signIn(t testing.TB, name, password string) {
	t.Helper()
	c.run(t, 30*time.Second,
		chromedp.Navigate(c.url),
		chromedp.WaitVisible(css(`[data-testid=login-name]`)),
		chromedp.SendKeys(css(`[data-testid=login-name]`), name),
		chromedp.SendKeys(css(`[data-testid=login-password]`), password),
		chromedp.Click(css(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(css(`[data-testid=fleet-table]`)),
	)
}
