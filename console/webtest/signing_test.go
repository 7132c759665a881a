//go:build linux

package webtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/action"
	"github.com/deskside/deskside/agent/command"
	"github.com/deskside/deskside/agent/desktop"
	"github.com/deskside/deskside/agent/orgtrust"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/server/servertest"
)

// syncBuffer is a log sink the agent writes from its own goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cardShot writes a PNG of the profile's Signing key card to
// $DESKSIDE_SCREENSHOTS/name, or to the test's temp dir.
func (c *console) cardShot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("DESKSIDE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	c.run(t, 5*time.Second, chromedp.Sleep(200*time.Millisecond)) // let the layout settle
	png := value(t, c, 20*time.Second, chromedp.Screenshot(css(`[data-testid=signing-card]`)))
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pinnedAgent enrolls a device whose agent pins org and checks every
// privileged request with the real guard (agent/orgtrust); the guard's log
// is returned to see what it accepted.
func pinnedAgent(t *testing.T, c *console, host string, org ed25519.PublicKey, o servertest.AgentOptions) (string, *syncBuffer) {
	t.Helper()
	st := c.relay.Enroll(t, host)
	// The certificate below is limited to front-desk: the endpoint's root
	// puts the device in that group (deskside-agent policy --groups).
	if err := orgtrust.WritePolicy(st.Dir, orgtrust.Policy{Groups: []string{"front-desk"}}); err != nil {
		t.Fatal(err)
	}
	if err := orgtrust.Pin(st.Dir, envelope.Fingerprint(org)); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	guard, err := orgtrust.Open(st.Dir, st.DeviceID, slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Guard, o.Hostname, o.Inventory, o.Health = guard, host, staticInv{}, staticHealth{}
	servertest.RunAgent(t, st, o)
	return st.DeviceID, logs
}

// TestSigningInBrowser is issue 11's browser test: the technician signs in
// to the console, creates a signing key in Chromium (WebCrypto, kept in
// IndexedDB), an admin certifies it with an organisation key made here,
// and the devices, whose agents pin that key, run the command, the action
// and the desktop session the browser signed; an unsigned request before
// certification and a signed one after revocation are refused, with the
// file system as witness, and the page points to the profile's Signing key
// card. Screenshots of the card in each state go where c.screenshot puts
// them (DESKSIDE_SCREENSHOTS).
func TestSigningInBrowser(t *testing.T) {
	c := startConsole(t)
	orgPub, org, _ := ed25519.GenerateKey(rand.Reader)
	log := servertest.DiscardLogger()
	dev, guardLog := pinnedAgent(t, c, "signed-host", orgPub, servertest.AgentOptions{
		Commands: command.New(command.Options{Logger: log}), Actions: action.New(action.Options{Logger: log}),
	})
	cs, ctx := c.relay.Admin(t)
	orgs := desksidev1.NewOrgServiceClient(c.relay.Dial(t))
	dir := t.TempDir()
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	cardState := func(s string) chromedp.CSS { return css(`[data-testid=signing-card][data-state=` + s + `]`) }
	deviceHref := c.url + "#/devices/" + dev + "?tab=diagnostics"
	// runCommand runs line on the device page's command pane and returns
	// the exit state and the text under the pane.
	runCommand := func(line string) (state, text string) {
		t.Helper()
		c.run(t, 30*time.Second,
			chromedp.Navigate(deviceHref),
			chromedp.WaitVisible(css(`[data-testid=cmd-input]`)),
			chromedp.SendKeys(css(`[data-testid=cmd-input]`), line+kb.Enter),
		)
		servertest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
			if s := eval[string](t, c, `document.querySelector('[data-testid=cmd-exit]')?.dataset.state ?? ''`); s == "" {
				return fmt.Errorf("no exit shown; pane: %s", eval[string](t, c, `document.querySelector('.cmd-card')?.textContent ?? location.hash`))
			}
			return nil
		})
		r := eval[[]string](t, c, `[document.querySelector('[data-testid=cmd-exit]').dataset.state, document.querySelector('.cmd-card').textContent]`)
		return r[0], r[1]
	}

	c.signIn(t, "admin", servertest.AdminPassword)
	c.run(t, 20*time.Second, chromedp.WaitVisible(row(dev, `[data-online=true]`)))

	// No key yet: the card explains and offers to make one.
	c.run(t, 20*time.Second, chromedp.Navigate(c.url+"#/profile"), chromedp.WaitVisible(cardState("none")))
	c.cardShot(t, "signing-none.png")

	// Create: the key is registered with the relay, waiting for an admin.
	c.run(t, 20*time.Second, chromedp.Click(css(`[data-testid=signing-create]`)), chromedp.WaitVisible(cardState("waiting")))
	fp := eval[string](t, c, `document.querySelector('[data-testid=signing-fingerprint]').textContent`)
	cmd := eval[string](t, c, `document.querySelector('[data-testid=signing-command]').textContent`)
	if want := "deskside technician certify admin --org-key ORG-KEY-FILE --role tier2 --fingerprint " + fp; cmd != want {
		t.Errorf("the card asks the admin to run %q, want %q", cmd, want)
	}
	c.cardShot(t, "signing-waiting.png")
	keys, err := orgs.ListTechnicianKeys(ctx, &desksidev1.ListTechnicianKeysRequest{Technician: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	var pub []byte
	for _, k := range keys.GetKeys() {
		if k.GetFingerprint() == fp {
			pub = k.GetPublicKey()
			if !strings.HasPrefix(k.GetLabel(), "browser: ") {
				t.Errorf("key label %q, want it to name the browser", k.GetLabel())
			}
		}
	}
	if envelope.Fingerprint(pub) != fp {
		t.Fatalf("the relay lists no key with the browser's fingerprint %s: %v", fp, keys.GetKeys())
	}
	// The private key is not extractable, and is kept in IndexedDB.
	if ext := value(t, c, 10*time.Second, chromedp.Evaluate[string](`new Promise((ok, no) => { const r = indexedDB.open('deskside-signing'); r.onerror = no; r.onsuccess = () => {
		const g = r.result.transaction('keys').objectStore('keys').get('admin'); g.onerror = no;
		g.onsuccess = () => ok(g.result ? String(g.result.privateKey.extractable) + ' ' + g.result.privateKey.algorithm.name : 'none'); }; })`,
		chromedp.EvalAwaitPromise)); ext != "false Ed25519" {
		t.Errorf("stored private key: extractable and algorithm %q, want \"false Ed25519\"", ext)
	}

	// Not certified yet: the request goes unsigned, the device refuses it,
	// and the page points to the profile.
	if state, text := runCommand("touch " + filepath.Join(dir, "unsigned")); state != "error" || !strings.Contains(text, "signed envelope") || !strings.Contains(text, "Signing key card") {
		t.Errorf("unsigned command: exit %s, pane %q; want the device's refusal and the hint", state, text)
	}
	c.screenshot(t, "signing-refused.png")
	if exists("unsigned") {
		t.Fatal("the device ran an unsigned command")
	}

	// The admin certifies the key with the organisation key, offline here.
	st, err := envelope.SignOrgKey(org, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := orgs.PublishOrgKey(ctx, &desksidev1.PublishOrgKeyRequest{Statement: st}); err != nil {
		t.Fatal(err)
	}
	cert, err := envelope.Certify(org, &desksidev1.TechnicianCertificateBody{
		Technician: "admin", PublicKey: pub, Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2,
		Groups: []string{"front-desk"}, NotAfter: timestamppb.New(time.Now().Add(90 * 24 * time.Hour)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := orgs.PublishCertificate(ctx, &desksidev1.PublishCertificateRequest{Certificate: cert}); err != nil {
		t.Fatal(err)
	}
	c.run(t, 20*time.Second, chromedp.Navigate(c.url+"#/profile"), chromedp.WaitVisible(cardState("certified")))
	card := eval[map[string]string](t, c, `({tier: document.querySelector('[data-testid=signing-tier]').textContent, org: document.querySelector('[data-testid=signing-org]').textContent})`)
	if !strings.HasPrefix(card["tier"], "Tier 2") || card["org"] != envelope.Fingerprint(orgPub) {
		t.Errorf("certified card shows %v, want tier 2 and organisation key %s", card, envelope.Fingerprint(orgPub))
	}
	c.cardShot(t, "signing-certified.png")

	// Signed: the command runs.
	if state, text := runCommand("touch " + filepath.Join(dir, "signed")); state != "ok" {
		t.Errorf("signed command: exit %s, pane %q", state, text)
	}
	if !exists("signed") {
		t.Error("the signed command did not run")
	}
	// A signed action too: kill a process of this test.
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sleeper.Wait() }()
	t.Cleanup(func() { sleeper.Process.Kill() })
	c.run(t, 30*time.Second,
		chromedp.SetValue(css(`[data-testid=action-kind]`), "kill"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=action-kind]').dispatchEvent(new Event('change'))`),
		chromedp.SendKeys(css(`[data-testid=action-pid]`), fmt.Sprint(sleeper.Process.Pid)),
		chromedp.Click(css(`[data-testid=action-run]`)),
		chromedp.WaitVisible(css(`[data-testid=action-ok], [data-testid=action-failed]`)),
	)
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Errorf("the signed kill action did not kill the process: %s", eval[string](t, c, `document.querySelector('[data-testid=action-result]').textContent`))
	}
	if n := strings.Count(guardLog.String(), "signed request accepted"); n != 2 {
		t.Errorf("the agent's guard accepted %d signed requests, want 2 (the command and the action): %s", n, guardLog.String())
	}

	t.Run("desktop", func(t *testing.T) {
		display, _ := startDesktop(t)
		desk, deskLog := pinnedAgent(t, c, "signed-desk", orgPub, servertest.AgentOptions{
			Desktop: desktop.NewManager(desktop.Options{Display: display, Logger: servertest.DiscardLogger()}),
		})
		if _, err := cs.SetDevicePolicy(ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: desk, UnattendedAllowed: true, MaxSessions: 1}); err != nil {
			t.Fatal(err)
		}
		c.run(t, 30*time.Second, chromedp.Navigate(c.url+"#/devices/"+desk+"/session?control=1"))
		// The device is unattended, but the certificate is tier 2: the
		// device asks its user anyway, naming whom the certificate names
		// with its tier (the relay's account is an admin's).
		needZenity(t)
		defer func() {
			if t.Failed() {
				t.Logf("page: %v\nagent: %s", eval[map[string]string](t, c, `(() => { const e = document.querySelector('[data-testid=session-state]'); return e ? {state: e.dataset.state ?? '', text: e.textContent} : {state: 'none', text: location.hash}; })()`), deskLog.String())
			}
		}()
		prompt, words := consentPrompt(t, display)
		if !strings.Contains(words, "admin (tier 2) wants to control your screen") {
			t.Errorf("prompt %q, want the certificate's technician and tier", words)
		}
		answerPrompt(t, display, prompt, "alt+a")
		servertest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
			s := eval[map[string]string](t, c, `(() => { const e = document.querySelector('[data-testid=session-state]'); return e ? {state: e.dataset.state ?? '', text: e.textContent} : {state: 'none', text: location.hash}; })()`)
			if s["state"] != "live" {
				return fmt.Errorf("session %s: %s", s["state"], s["text"])
			}
			return nil
		})
		value(t, c, 30*time.Second, chromedp.Evaluate[string](waitFrameJS, chromedp.EvalAwaitPromise))
		// The fingerprint as the page writes it (desktop.ts sdpFingerprint:
		// "sha-256 " and the upper-cased value) is the answer's SDP line.
		fps := value(t, c, 10*time.Second, chromedp.Evaluate[[]string](`(async () => {
			const cert = await RTCPeerConnection.generateCertificate({name: "ECDSA", namedCurve: "P-256"});
			const pc = new RTCPeerConnection({certificates: [cert]});
			pc.createDataChannel("x");
			const o = await pc.createOffer();
			pc.close();
			return [/a=fingerprint:(.*)/.exec(o.sdp)[1].trim(), "sha-256 " + cert.getFingerprints().find((f) => f.algorithm === "sha-256").value.toUpperCase()];
		})()`, chromedp.EvalAwaitPromise))
		if fps[0] != fps[1] {
			t.Errorf("SDP fingerprint %q, the page's form %q", fps[0], fps[1])
		}
		if l := deskLog.String(); !strings.Contains(l, "signed request accepted") || !strings.Contains(l, "StartDesktop") || !strings.Contains(l, "technician=admin") {
			t.Errorf("the desktop agent's guard did not accept a signed session: %s", l)
		}
		c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=session-end]`)))
	})

	// Revoked: the card says so, and the device refuses the (still
	// signed) request, naming the revocation.
	l, err := envelope.SignRevocations(org, &desksidev1.RevocationListBody{Serial: 1, Technicians: []string{"admin"}, IssuedAt: timestamppb.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := orgs.PublishRevocations(ctx, &desksidev1.PublishRevocationsRequest{List: l}); err != nil {
		t.Fatal(err)
	}
	c.run(t, 20*time.Second, chromedp.Navigate(c.url+"#/profile"), chromedp.WaitVisible(cardState("revoked")))
	c.cardShot(t, "signing-revoked.png")
	if state, text := runCommand("touch " + filepath.Join(dir, "revoked")); state != "error" || !strings.Contains(text, "revoked") || !strings.Contains(text, "Signing key card") {
		t.Errorf("command after revocation: exit %s, pane %q; want the revocation refusal and the hint", state, text)
	}
	if exists("revoked") {
		t.Error("the device ran a revoked technician's command")
	}

	// Removing the key brings the first step back.
	c.run(t, 20*time.Second,
		chromedp.Navigate(c.url+"#/profile"),
		chromedp.WaitVisible(cardState("revoked")),
		chromedp.Click(css(`[data-testid=signing-remove]`)),
		chromedp.Click(css(`[data-testid=signing-remove-confirm]`)),
		chromedp.WaitVisible(cardState("none")),
	)
}
