package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// webClient talks to the relay's web console like a browser would: HTTPS,
// a cookie jar, an Origin header, the Connect protocol with JSON.
type webClient struct {
	t      *testing.T
	base   string
	origin string
	http   *http.Client
}

func (r *relay) web(t *testing.T) *webClient {
	jar, _ := cookiejar.New(nil)
	base := "https://" + r.srv.WebAddr().String()
	return &webClient{t: t, base: base, origin: base, http: &http.Client{
		Jar: jar, Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.caPool(), ServerName: "127.0.0.1"}, ForceAttemptHTTP2: true},
	}}
}

// call makes a unary Connect call of ConsoleService and returns the HTTP
// status and body.
func (w *webClient) call(method string, req any) (int, map[string]any, *http.Response) {
	w.t.Helper()
	return w.callService("ConsoleService", method, req)
}

// callService makes a unary Connect call of a deskside.v1 service.
func (w *webClient) callService(service, method string, req any) (int, map[string]any, *http.Response) {
	w.t.Helper()
	b, _ := json.Marshal(req)
	hr, _ := http.NewRequest(http.MethodPost, w.base+"/deskside.v1."+service+"/"+method, bytes.NewReader(b))
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Connect-Protocol-Version", "1")
	if w.origin != "" {
		hr.Header.Set("Origin", w.origin)
	}
	resp, err := w.http.Do(hr)
	if err != nil {
		w.t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	json.Unmarshal(body, &out)
	return resp.StatusCode, out, resp
}

func TestWebLoginCookieAndHeaders(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	w := r.web(t)

	// The app's files come with the security headers.
	resp, err := w.http.Get(w.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for h, want := range map[string]string{
		"Content-Security-Policy":   "script-src 'self'",
		"Strict-Transport-Security": "max-age=",
		"X-Content-Type-Options":    "nosniff",
	} {
		if got := resp.Header.Get(h); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to contain %q", h, got, want)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-") {
		t.Errorf("CSP %q", csp)
	}
	if resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
		t.Errorf("web console not on TLS 1.3")
	}

	if code, body, _ := w.call("ListDevices", map[string]any{}); code != http.StatusUnauthorized || body["code"] != "unauthenticated" {
		t.Fatalf("unauthenticated list: %d %v", code, body)
	}
	code, body, resp := w.call("Login", map[string]any{"name": "admin", "password": adminPassword})
	if code != http.StatusOK {
		t.Fatalf("login: %d %v", code, body)
	}
	if tok, _ := body["token"].(string); tok != "" {
		t.Fatalf("web login returned the session token in the body: %q", tok)
	}
	var sc *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "deskside_session" {
			sc = c
		}
	}
	if sc == nil || !sc.HttpOnly || !sc.Secure || sc.SameSite != http.SameSiteStrictMode || sc.Value == "" {
		t.Fatalf("session cookie %+v, want HttpOnly Secure SameSite=Strict", sc)
	}
	if code, body, _ := w.call("ListDevices", map[string]any{}); code != http.StatusOK {
		t.Fatalf("list with cookie: %d %v", code, body)
	}
	if code, body, _ := w.call("WhoAmI", map[string]any{}); code != http.StatusOK || body["technician"].(map[string]any)["name"] != "admin" {
		t.Fatalf("whoami: %d %v", code, body)
	}
	if code, _, _ := w.call("Logout", map[string]any{}); code != http.StatusOK {
		t.Fatalf("logout: %d", code)
	}
	if code, _, _ := w.call("ListDevices", map[string]any{}); code != http.StatusUnauthorized {
		t.Fatalf("list after logout: %d", code)
	}
}

func TestWebRefusesCrossOrigin(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	w := r.web(t)
	if code, _, _ := w.call("Login", map[string]any{"name": "admin", "password": adminPassword}); code != http.StatusOK {
		t.Fatal("login")
	}
	for _, origin := range []string{"https://evil.example", "http://" + r.srv.WebAddr().String(), ""} {
		w.origin = origin
		for _, m := range []string{"WatchDevices", "ListDevices", "ExportInventory"} {
			if code, _, _ := w.call(m, map[string]any{}); code != http.StatusForbidden {
				t.Errorf("%s from origin %q: status %d, want 403", m, origin, code)
			}
		}
	}
}

func TestWebLoginRateLimitedPerAddress(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	w := r.web(t)
	limited := false
	for i := range 15 {
		// Different accounts, so the per-account lockout is not what stops it.
		code, body, _ := w.call("Login", map[string]any{"name": "nobody" + string(rune('a'+i)), "password": "wrong-password-x"})
		if code == http.StatusTooManyRequests && body["code"] == "resource_exhausted" {
			limited = true
			if !strings.Contains(body["message"].(string), "too many sign-in attempts") {
				t.Errorf("message %v", body["message"])
			}
			if i < 10 {
				t.Errorf("limited after only %d attempts", i)
			}
			break
		}
	}
	if !limited {
		t.Fatal("15 sign-in attempts from one address were not rate-limited")
	}
}

// readConnectStream reads Connect streaming envelopes (flags, length, JSON).
func readConnectStream(t *testing.T, body io.Reader, out chan<- map[string]any) {
	br := bufio.NewReader(body)
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			close(out)
			return
		}
		msg := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
		if _, err := io.ReadFull(br, msg); err != nil {
			close(out)
			return
		}
		m := map[string]any{}
		json.Unmarshal(msg, &m)
		if hdr[0]&2 != 0 { // end of stream
			m["__end"] = true
		}
		out <- m
	}
}

func TestWebWatchDevicesLive(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	w := r.web(t)
	if code, _, _ := w.call("Login", map[string]any{"name": "admin", "password": adminPassword}); code != http.StatusOK {
		t.Fatal("login")
	}
	st := r.mustEnroll(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := []byte{0, 0, 0, 0, 2, '{', '}'}
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.base+"/deskside.v1.ConsoleService/WatchDevices", bytes.NewReader(env))
	hr.Header.Set("Content-Type", "application/connect+json")
	hr.Header.Set("Origin", w.origin)
	resp, err := w.http.Do(hr)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %v %v", resp, err)
	}
	defer resp.Body.Close()
	events := make(chan map[string]any, 16)
	go readConnectStream(t, resp.Body, events)

	next := func(wantOnline bool) {
		t.Helper()
		deadline := time.After(2 * time.Second) // the console's promise
		for {
			select {
			case m, ok := <-events:
				if !ok || m["__end"] != nil {
					t.Fatalf("watch ended: %v", m)
				}
				d, _ := m["device"].(map[string]any)
				if d == nil {
					continue // the "watch is live" message
				}
				online, _ := d["online"].(bool)
				if d["id"] == st.DeviceID && online == wantOnline {
					return
				}
			case <-deadline:
				t.Fatalf("no online=%v event within 2s", wantOnline)
			}
		}
	}
	a := runAgent(t, st, agentOpts{})
	next(true)
	a.cancel()
	<-a.done
	a.done <- nil
	next(false)
}

func TestTOTPEnrollmentAndLogin(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	cs, ctx := r.admin(t)
	begin, err := cs.BeginTotpEnrollment(ctx, &desksidev1.BeginTotpEnrollmentRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(begin.GetQrPng(), []byte("\x89PNG")) || !strings.HasPrefix(begin.GetUrl(), "otpauth://totp/") {
		t.Fatalf("enrollment: %v", begin.GetUrl())
	}
	if _, err := cs.ConfirmTotpEnrollment(ctx, &desksidev1.ConfirmTotpEnrollmentRequest{Code: "000000"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("wrong code: %v", err)
	}
	code, _ := totp.GenerateCode(begin.GetSecret(), time.Now())
	if _, err := cs.ConfirmTotpEnrollment(ctx, &desksidev1.ConfirmTotpEnrollmentRequest{Code: code}); err != nil {
		t.Fatal(err)
	}
	who, _ := cs.WhoAmI(ctx, &desksidev1.WhoAmIRequest{})
	if !who.GetTechnician().GetTotpEnabled() {
		t.Fatal("TOTP not enabled")
	}
	anon := desksidev1.NewConsoleServiceClient(r.dial(t, nil))
	// No oracle: the right password without its code gets the answer of
	// a wrong password.
	_, wrong := anon.Login(context.Background(), &desksidev1.LoginRequest{Name: "admin", Password: "a wrong password"})
	_, nocode := anon.Login(context.Background(), &desksidev1.LoginRequest{Name: "admin", Password: adminPassword})
	if status.Code(nocode) != codes.Unauthenticated || status.Convert(nocode).Message() != status.Convert(wrong).Message() {
		t.Fatalf("right password without code: %v; wrong password: %v; want the same answer", nocode, wrong)
	}
	// A current code signs in.
	code, _ = totp.GenerateCode(begin.GetSecret(), time.Now())
	if _, err := anon.Login(context.Background(), &desksidev1.LoginRequest{Name: "admin", Password: adminPassword, TotpCode: code}); err != nil {
		t.Fatalf("login with code: %v", err)
	}
	// The same code again, as an eavesdropper would replay it: refused,
	// with the same answer.
	_, replay := anon.Login(context.Background(), &desksidev1.LoginRequest{Name: "admin", Password: adminPassword, TotpCode: code})
	if status.Code(replay) != codes.Unauthenticated || status.Convert(replay).Message() != status.Convert(wrong).Message() {
		t.Fatalf("replayed code: %v", replay)
	}
	if _, err := cs.DisableTotp(ctx, &desksidev1.DisableTotpRequest{Code: code}); err != nil {
		t.Fatal(err)
	}
}
