package tray

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// TestPageRefusesOthers: the page answers only its own origin, after the
// launch secret was exchanged for the cookie; everything else is 403.
func TestPageRefusesOthers(t *testing.T) {
	srv, err := StartServer(ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr()
	origin := base
	do := func(c *http.Client, method, path, body string, h map[string]string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range h {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	noRedirect := func(c *http.Client) *http.Client {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return c
	}
	anon := noRedirect(&http.Client{})

	t.Log("without the cookie: refused")
	for _, p := range []string{"/", "/api/state", "/api/requests", "/api/events"} {
		if res, _ := do(anon, "GET", p, "", nil); res.StatusCode != http.StatusForbidden {
			t.Fatalf("GET %s without the cookie: %d", p, res.StatusCode)
		}
	}
	if res, _ := do(anon, "POST", "/api/file", `{"description":"x"}`, map[string]string{"Origin": origin}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without the cookie: %d", res.StatusCode)
	}
	if res, _ := do(anon, "GET", "/launch?k=wrong", "", nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a wrong secret: %d", res.StatusCode)
	}

	t.Log("the launch secret gives the cookie: HttpOnly, SameSite=Strict, and the secret leaves the address")
	u, _ := url.Parse(srv.URL("requests"))
	res, _ := do(anon, "GET", u.RequestURI(), "", map[string]string{"Sec-Fetch-Site": "none"})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/#requests" {
		t.Fatalf("launch: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	ck := res.Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Value == "" || strings.Contains(srv.URL(""), ck[0].Value) {
		t.Fatalf("cookie: %+v", ck)
	}
	if res, _ := do(anon, "GET", u.RequestURI(), "", map[string]string{"Sec-Fetch-Site": "cross-site"}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a launch link followed from another site: %d", res.StatusCode)
	}
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(&url.URL{Scheme: "http", Host: srv.Addr()}, ck)
	user := noRedirect(&http.Client{Jar: jar})

	t.Log("with the cookie: the page, with a CSP that allows no inline script and no other origin")
	res, body := do(user, "GET", "/", "", nil)
	if res.StatusCode != 200 || !strings.Contains(body, `<script src="/app.js"`) {
		t.Fatalf("page: %d", res.StatusCode)
	}
	if c := res.Header.Get("Content-Security-Policy"); !strings.Contains(c, "script-src 'self';") || strings.Contains(c, "unsafe-inline") ||
		!strings.Contains(c, "connect-src 'self'") || !strings.Contains(c, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q", c)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " on") && strings.Contains(body, "onclick") {
		t.Fatal("inline script in the page")
	}
	res, body = do(user, "GET", "/api/state", "", map[string]string{"Origin": origin})
	if res.StatusCode != 200 || !strings.Contains(body, `"reachable":false`) {
		t.Fatalf("state: %d %s", res.StatusCode, body)
	}
	res, body = do(user, "POST", "/api/file", `{"description":"It broke"}`, map[string]string{"Origin": origin})
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(body, "cannot be reached") {
		t.Fatalf("filing without an agent: %d %s", res.StatusCode, body)
	}

	t.Log("with the cookie but from elsewhere: refused")
	for _, c := range []struct {
		what, method, path string
		h                  map[string]string
	}{
		{"another origin", "POST", "/api/file", map[string]string{"Origin": "http://evil.example"}},
		{"another port on loopback", "POST", "/api/file", map[string]string{"Origin": "http://127.0.0.1:1"}},
		{"no origin on a POST", "POST", "/api/file", nil},
		{"a GET with another origin", "GET", "/api/requests", map[string]string{"Origin": "http://evil.example"}},
		{"a cross-site fetch", "GET", "/api/requests", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"a same-site fetch (another port)", "GET", "/api/requests", map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"DNS rebinding (another Host)", "GET", "/api/requests", map[string]string{"Host": "evil.example:" + u.Port()}},
		{"localhost instead of 127.0.0.1", "GET", "/", map[string]string{"Host": "localhost:" + u.Port()}},
	} {
		body := ""
		if c.method == "POST" {
			body = `{"description":"x"}`
		}
		if res, _ := do(user, c.method, c.path, body, c.h); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", c.what, res.StatusCode)
		}
	}
}
