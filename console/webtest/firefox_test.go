package webtest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/health"
	"github.com/deskside/deskside/agent/inventory"
	"github.com/deskside/deskside/console/web"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/pki"
	"github.com/deskside/deskside/relay/server/servertest"
)

// The console must work in current Chromium and Firefox. Chromium is
// driven through chromedp by the other tests; Firefox is driven here
// through Marionette, the remote protocol built into Firefox that
// geckodriver itself speaks (Debian packages no geckodriver, and
// Marionette needs nothing but a TCP socket). `make deps` installs Firefox
// ESR, so under CI a missing Firefox fails the test.

// firefoxTools returns Firefox and NSS's certutil, or skips (fails under
// CI). It skips under -short.
func firefoxTools(t testing.TB) (firefox, certutil string) {
	t.Helper()
	testkit.Heavy(t, "starts Firefox")
	firefox = os.Getenv("DESKSIDE_FIREFOX")
	if firefox == "" {
		for _, name := range []string{"firefox-esr", "firefox"} {
			if p, err := exec.LookPath(name); err == nil {
				firefox = p
				break
			}
		}
	}
	const fix = "install the Debian packages firefox-esr and libnss3-tools (make deps) or set DESKSIDE_FIREFOX"
	testkit.NeedOK(t, "Firefox", firefox != "", "neither firefox-esr nor firefox is on PATH", fix)
	_, err := os.Stat(firefox)
	testkit.Need(t, "Firefox", err, fix)
	certutil, err = exec.LookPath("certutil")
	testkit.Need(t, "NSS certutil", err, fix)
	return firefox, certutil
}

// ffConsole is a relay serving the real embedded console and a headless
// Firefox, with a fresh profile that trusts the relay's CA, driven over
// Marionette.
type ffConsole struct {
	relay *servertest.Relay
	url   string
	m     *marionette
}

func startFirefoxConsole(t *testing.T) *ffConsole {
	t.Helper()
	firefox, certutil := firefoxTools(t)
	r := servertest.Start(t, servertest.Options{WebFiles: web.Files()})

	// A fresh profile whose NSS database trusts the relay CA as a web CA:
	// no certificate-error bypass, the real chain is verified.
	profile := t.TempDir()
	db := "sql:" + profile
	for _, args := range [][]string{
		{"-N", "--empty-password", "-d", db},
		{"-A", "-n", "deskside", "-t", "C,,", "-i", filepath.Join(r.Dir, pki.CAFile), "-d", db},
	} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	prefs := []string{
		`user_pref("marionette.port", 0);`,                                  // any free port, written to MarionetteActivePort
		`user_pref("layout.css.prefers-color-scheme.content-override", 1);`, // light, for the screenshot checks
		`user_pref("browser.shell.checkDefaultBrowser", false);`,
		`user_pref("browser.startup.homepage_override.mstone", "ignore");`,
		`user_pref("datareporting.policy.dataSubmissionEnabled", false);`,
		`user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);`,
		`user_pref("app.update.disabledForTesting", true);`,
		`user_pref("signon.rememberSignons", false);`, // no "save password?" doorhanger after sign-in
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(strings.Join(prefs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	logPath := filepath.Join(t.TempDir(), "firefox.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(firefox, "--headless", "--marionette", "--no-remote", "--profile", profile, "about:blank")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "MOZ_HEADLESS=1", "MOZ_CRASHREPORTER_DISABLE=1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start Firefox: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logFile.Close(); close(exited) }()

	c := &ffConsole{relay: r, url: "https://" + r.Srv.WebAddr().String() + "/"}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("Firefox output (tail):\n%s", b)
			}
		}
		if c.m != nil {
			c.m.quit()
		}
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})

	// Marionette writes its port into the profile once it listens.
	var port int
	servertest.CheckFor(t, 90*time.Second, 100*time.Millisecond, func() error {
		select {
		case <-exited:
			t.Fatal("Firefox exited before Marionette started listening")
		default:
		}
		b, err := os.ReadFile(filepath.Join(profile, "MarionetteActivePort"))
		if err != nil {
			return err
		}
		port, err = strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || port == 0 {
			return fmt.Errorf("MarionetteActivePort %q", b)
		}
		return nil
	})
	m, err := dialMarionette(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("Marionette: %v", err)
	}
	c.m = m
	// No acceptInsecureCerts: the page loads only if the profile trusts the relay CA.
	if _, err := m.call(60*time.Second, "WebDriver:NewSession", map[string]any{
		"capabilities": map[string]any{"alwaysMatch": map[string]any{"pageLoadStrategy": "normal"}},
	}); err != nil {
		t.Fatalf("Marionette session: %v", err)
	}
	if _, err := m.call(10*time.Second, "WebDriver:SetWindowRect", map[string]any{"width": 1280, "height": 800}); err != nil {
		t.Fatalf("window size: %v", err)
	}
	return c
}

// --- Marionette -------------------------------------------------------------

// marionette is a client for Firefox's Marionette protocol (version 3):
// each message is "<byte length>:<JSON>"; commands are
// [0, id, name, params] and responses [1, id, error, result].
type marionette struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
	id   int
}

// marionetteError is an error response (WebDriver error codes).
type marionetteError struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *marionetteError) Error() string { return e.Code + ": " + e.Message }

// webElement is the W3C WebDriver key of an element reference.
const webElement = "element-6066-11e4-a52e-4f735466cecf"

func dialMarionette(addr string) (*marionette, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	m := &marionette{conn: conn, r: bufio.NewReader(conn)}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	hello, err := m.read()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	var h struct {
		Protocol int `json:"marionetteProtocol"`
	}
	if err := json.Unmarshal(hello, &h); err != nil || h.Protocol != 3 {
		conn.Close()
		return nil, fmt.Errorf("unexpected handshake %s", hello)
	}
	return m, nil
}

func (m *marionette) read() ([]byte, error) {
	n, err := m.r.ReadString(':')
	if err != nil {
		return nil, err
	}
	size, err := strconv.Atoi(strings.TrimSuffix(n, ":"))
	if err != nil || size < 0 || size > 256<<20 {
		return nil, fmt.Errorf("bad message length %q", n)
	}
	b := make([]byte, size)
	_, err = io.ReadFull(m.r, b)
	return b, err
}

// call sends one command and returns its result.
func (m *marionette) call(timeout time.Duration, name string, params any) (json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.id++
	id := m.id
	if params == nil {
		params = map[string]any{}
	}
	msg, err := json.Marshal([]any{0, id, name, params})
	if err != nil {
		return nil, err
	}
	m.conn.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(m.conn, "%d:%s", len(msg), msg); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for {
		b, err := m.read()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		var resp []json.RawMessage
		if err := json.Unmarshal(b, &resp); err != nil || len(resp) != 4 {
			return nil, fmt.Errorf("%s: bad response %.200s", name, b)
		}
		var typ, rid int
		if json.Unmarshal(resp[0], &typ) != nil || json.Unmarshal(resp[1], &rid) != nil || typ != 1 || rid != id {
			continue // not the answer to this command
		}
		if string(resp[2]) != "null" {
			e := &marionetteError{}
			if err := json.Unmarshal(resp[2], e); err != nil {
				return nil, fmt.Errorf("%s: bad error %s", name, resp[2])
			}
			return nil, fmt.Errorf("%s: %w", name, e)
		}
		return resp[3], nil
	}
}

// ffValue calls a command whose result is {"value": T}.
func ffValue[T any](m *marionette, timeout time.Duration, name string, params any) (T, error) {
	var v struct{ Value T }
	raw, err := m.call(timeout, name, params)
	if err != nil {
		return v.Value, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v.Value, fmt.Errorf("%s: result %.200s: %w", name, raw, err)
	}
	return v.Value, nil
}

func (m *marionette) quit() {
	m.call(10*time.Second, "Marionette:Quit", map[string]any{"flags": []string{"eForceQuit"}})
	m.conn.Close()
}

// --- console steps ----------------------------------------------------------

func (c *ffConsole) navigate(t *testing.T, url string) {
	t.Helper()
	if _, err := c.m.call(60*time.Second, "WebDriver:Navigate", map[string]any{"url": url}); err != nil {
		t.Fatalf("Firefox: open %s: %v", url, err)
	}
}

// ffScript runs JavaScript in the page (arguments[i] are args) and returns its value.
func ffScript[T any](t *testing.T, c *ffConsole, script string, args ...any) T {
	t.Helper()
	if args == nil {
		args = []any{}
	}
	v, err := ffValue[T](c.m, 30*time.Second, "WebDriver:ExecuteScript", map[string]any{"script": script, "args": args})
	if err != nil {
		t.Fatalf("Firefox: script: %v", err)
	}
	return v
}

// waitVisible waits until an element matching sel is rendered.
func (c *ffConsole) waitVisible(t *testing.T, timeout time.Duration, sel string) {
	t.Helper()
	servertest.CheckFor(t, timeout, 100*time.Millisecond, func() error {
		if ffScript[bool](t, c, `const e = document.querySelector(arguments[0]);
			return !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";`, sel) {
			return nil
		}
		return fmt.Errorf("%s not visible in Firefox at %s", sel, ffScript[string](t, c, `return location.href`))
	})
}

func (c *ffConsole) find(t *testing.T, sel string) string {
	t.Helper()
	ref, err := ffValue[map[string]string](c.m, 10*time.Second, "WebDriver:FindElement", map[string]any{"using": "css selector", "value": sel})
	if err != nil {
		t.Fatalf("Firefox: find %s: %v", sel, err)
	}
	id := ref[webElement]
	if id == "" {
		t.Fatalf("Firefox: find %s: no element reference in %v", sel, ref)
	}
	return id
}

func (c *ffConsole) sendKeys(t *testing.T, sel, text string) {
	t.Helper()
	if _, err := c.m.call(10*time.Second, "WebDriver:ElementSendKeys", map[string]any{"id": c.find(t, sel), "text": text}); err != nil {
		t.Fatalf("Firefox: type into %s: %v", sel, err)
	}
}

func (c *ffConsole) click(t *testing.T, sel string) {
	t.Helper()
	if _, err := c.m.call(30*time.Second, "WebDriver:ElementClick", map[string]any{"id": c.find(t, sel)}); err != nil {
		t.Fatalf("Firefox: click %s: %v", sel, err)
	}
}

func (c *ffConsole) attribute(t *testing.T, sel, name string) string {
	t.Helper()
	v, err := ffValue[*string](c.m, 10*time.Second, "WebDriver:GetElementAttribute", map[string]any{"id": c.find(t, sel), "name": name})
	if err != nil {
		t.Fatalf("Firefox: attribute %s of %s: %v", name, sel, err)
	}
	if v == nil {
		t.Fatalf("Firefox: %s has no %s attribute", sel, name)
	}
	return *v
}

// screenshot captures the viewport, saves it as $DESKSIDE_SCREENSHOTS/name
// (or in the test's temp dir) and decodes it.
func (c *ffConsole) screenshot(t *testing.T, name string) image.Image {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // let charts and transitions settle
	b64, err := ffValue[string](c.m, 30*time.Second, "WebDriver:TakeScreenshot", map[string]any{"full": false, "hash": false})
	if err != nil {
		t.Fatalf("Firefox: screenshot: %v", err)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("Firefox: screenshot: %v", err)
	}
	dir := os.Getenv("DESKSIDE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Firefox: screenshot %s is not a PNG: %v", name, err)
	}
	return img
}

// --- pixels -----------------------------------------------------------------

type rgb struct{ r, g, b int }

// The console's light palette (console/web/src/app.css).
var (
	colBg     = rgb{0xf5, 0xf6, 0xf8} // --bg
	colWhite  = rgb{0xff, 0xff, 0xff} // --surface
	colAccent = rgb{0x24, 0x57, 0xc5} // --accent: the primary button
	colTopbar = rgb{0x16, 0x21, 0x3a} // --topbar
)

func near(img image.Image, x, y int, c rgb, tol int) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	d := func(a uint32, b int) int {
		v := int(a>>8) - b
		if v < 0 {
			return -v
		}
		return v
	}
	return d(r, c.r) <= tol && d(g, c.g) <= tol && d(b, c.b) <= tol
}

// share is the fraction of pixels in rect that are near c.
func share(img image.Image, rect image.Rectangle, c rgb, tol int) float64 {
	rect = rect.Intersect(img.Bounds())
	if rect.Empty() {
		return 0
	}
	n := 0
	for y := rect.Min.Y; y < rect.Max.Y; y++ {
		for x := rect.Min.X; x < rect.Max.X; x++ {
			if near(img, x, y, c, tol) {
				n++
			}
		}
	}
	return float64(n) / float64(rect.Dx()*rect.Dy())
}

// checkSignInPixels: the sign-in page rendered, not a blank or error
// page: a light page with the white form card and the blue Sign in button.
func checkSignInPixels(t *testing.T, img image.Image) {
	t.Helper()
	b := img.Bounds()
	if b.Dx() < 600 || b.Dy() < 400 {
		t.Fatalf("Firefox sign-in screenshot is %dx%d, want about 1280x800", b.Dx(), b.Dy())
	}
	light := share(img, b, colBg, 6) + share(img, b, colWhite, 3)
	white := share(img, b, colWhite, 3)
	// The button is about 336x36 px in a ~1280x700 viewport: ~1.3%.
	accent := share(img, b, colAccent, 24)
	t.Logf("Firefox sign-in page: %.0f%% light, %.1f%% form white, %.2f%% button blue", light*100, white*100, accent*100)
	if light < 0.8 {
		t.Errorf("Firefox sign-in page is not the light console page: only %.0f%% of pixels are the background or form colours", light*100)
	}
	if white < 0.04 || white > 0.5 {
		t.Errorf("Firefox sign-in page: the white form card covers %.1f%% of the page, want 4–50%%", white*100)
	}
	if accent < 0.003 {
		t.Errorf("Firefox sign-in page: no blue Sign in button (%.2f%% accent pixels)", accent*100)
	}
}

// checkTopbarPixels: the signed-in pages have the dark top bar (52 px).
func checkTopbarPixels(t *testing.T, img image.Image, page string) {
	t.Helper()
	b := img.Bounds()
	top := share(img, image.Rect(b.Min.X, b.Min.Y+2, b.Max.X, b.Min.Y+8), colTopbar, 10)
	below := share(img, image.Rect(b.Min.X, b.Min.Y+120, b.Max.X, b.Max.Y), colTopbar, 10)
	t.Logf("Firefox %s: top rows %.0f%% top-bar colour, rest %.1f%%", page, top*100, below*100)
	if top < 0.9 {
		t.Errorf("Firefox %s: the top bar is missing: %.0f%% of the top rows are its colour", page, top*100)
	}
	if below > 0.2 {
		t.Errorf("Firefox %s: %.0f%% of the page below the top bar is the top bar's colour", page, below*100)
	}
}

// --- the test -----------------------------------------------------------------

// TestFirefoxConsole walks the console in headless Firefox against a real
// relay and a real agent: the sign-in page renders over HTTPS trusted
// through the relay CA, sign in as admin, see the device online in the
// fleet table, open it and read the RAM total the store has, sign out.
func TestFirefoxConsole(t *testing.T) {
	c := startFirefoxConsole(t)
	log := servertest.DiscardLogger()
	st := c.relay.Enroll(t, "firefox-workstation")
	servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: inventory.New(log), Health: health.NewSampler(log, health.Options{}),
		HealthInterval: 500 * time.Millisecond, Hostname: "firefox-workstation",
	})

	// Sign-in page.
	c.navigate(t, c.url)
	c.waitVisible(t, 30*time.Second, `[data-testid=login-name]`)
	if ua := ffScript[string](t, c, `return navigator.userAgent`); !strings.Contains(ua, "Firefox/") {
		t.Fatalf("not Firefox: %s", ua)
	}
	checkSignInPixels(t, c.screenshot(t, "firefox-signin.png"))

	// Sign in: the fleet table shows the device online.
	c.sendKeys(t, `[data-testid=login-name]`, "admin")
	c.sendKeys(t, `[data-testid=login-password]`, servertest.AdminPassword)
	c.click(t, `[data-testid=login-submit]`)
	c.waitVisible(t, 30*time.Second, `[data-testid=fleet-table]`)
	c.waitVisible(t, 30*time.Second, rowSel(st.DeviceID)+`[data-online=true]`)
	if n := ffScript[int](t, c, `return document.querySelectorAll("[data-testid=device-row]").length`); n != 1 {
		t.Errorf("fleet table has %d device rows, want 1", n)
	}
	if w := ffScript[int](t, c, `return document.documentElement.scrollWidth`); w > 1300 {
		t.Errorf("fleet page is %d px wide at a 1280 px window", w)
	}
	checkTopbarPixels(t, c.screenshot(t, "firefox-fleet.png"), "fleet page")

	// Device page: the RAM total is the store's.
	cs, ctx := c.relay.Admin(t)
	var want uint64
	servertest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
		if err != nil {
			return err
		}
		if want = d.GetInventory().GetMemory().GetTotalBytes(); want == 0 {
			return errors.New("no inventory yet")
		}
		return nil
	})
	c.click(t, rowSel(st.DeviceID)+` a`)
	c.waitVisible(t, 30*time.Second, `[data-testid=device-ram-total]`)
	if ram := c.attribute(t, `[data-testid=device-ram-total]`, "data-bytes"); ram != strconv.FormatUint(want, 10) {
		t.Fatalf("Firefox device page RAM %q, store %d", ram, want)
	}
	checkTopbarPixels(t, c.screenshot(t, "firefox-device.png"), "device page")

	// Sign out.
	c.click(t, `[data-testid=signout]`)
	c.waitVisible(t, 20*time.Second, `[data-testid=login-name]`)
}
