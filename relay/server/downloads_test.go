package server_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/downloads"
	"github.com/deskside/deskside/relay/server"
)

// TestDownloads runs a real relay and fetches its agent packages over
// HTTPS as curl and the console do: the listing (JSON and HTML), a file
// with its headers, HEAD, a range, a conditional request, a file added
// while the relay runs, and every way out of the directory refused.
func TestDownloads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dl")
	deb := bytes.Repeat([]byte("deb!"), 50_000)
	secret := []byte("not for download\n")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"deskside-agent_1.2.3+4.gabc_amd64.deb": deb,
		"notes.txt":                             secret, // not a package name
		"deskside-relay_1.2.3_amd64.deb":        secret, // the relay's package is not served
		".deskside-agent.msi":                   secret, // hidden
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A link out of the directory under a package's name, a link inside
	// it, and a directory under a package's name.
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "deskside-agent.msi")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("deskside-agent_1.2.3+4.gabc_amd64.deb", filepath.Join(dir, "deskside-agent-link.deb")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "deskside-agent-dir.rpm"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", func(c *server.Config) { c.DownloadsDir = dir })
	w := r.web(t)
	get := func(path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, w.base+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		if strings.HasPrefix(path, "HEAD ") {
			req, _ = http.NewRequest(http.MethodHead, w.base+strings.TrimPrefix(path, "HEAD "), nil)
		}
		resp, err := w.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	sum := sha256.Sum256(deb)
	debSum := hex.EncodeToString(sum[:])

	t.Run("list", func(t *testing.T) {
		resp, b := get("/download/", "Accept", "application/json")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("listing: %s %s\n%s", resp.Status, resp.Header.Get("Content-Type"), b)
		}
		var l downloads.Listing
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatal(err)
		}
		if len(l.Files) != 1 || l.Files[0].Name != "deskside-agent_1.2.3+4.gabc_amd64.deb" || l.Files[0].SHA256 != debSum ||
			l.Files[0].Size != int64(len(deb)) || l.Files[0].Kind != "deb" {
			t.Errorf("listing files %+v: want only the .deb with its size and hash", l.Files)
		}
		_, agentPort, _ := net.SplitHostPort(r.addr)
		if l.Relay != "127.0.0.1:"+agentPort || l.URL != w.base+"/download/" {
			t.Errorf("listing relay %q url %q: want the agent address 127.0.0.1:%s and %s/download/", l.Relay, l.URL, agentPort, w.base)
		}
		resp, b = get("/download/")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(string(b), debSum) || strings.Contains(string(b), "notes.txt") {
			t.Errorf("HTML listing: %s\n%s", resp.Status, b)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Error("the listing lacks the console's security headers")
		}
	})

	t.Run("fetch", func(t *testing.T) {
		resp, b := get("/download/deskside-agent_1.2.3+4.gabc_amd64.deb")
		if resp.StatusCode != 200 || !bytes.Equal(b, deb) {
			t.Fatalf("fetch: %s, %d bytes", resp.Status, len(b))
		}
		for h, want := range map[string]string{
			"Content-Type":        "application/vnd.debian.binary-package",
			"Content-Disposition": `attachment; filename=deskside-agent_1.2.3+4.gabc_amd64.deb`,
			"Content-Length":      fmt.Sprint(len(deb)),
			"Etag":                `"` + debSum + `"`,
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s: %q, want %q", h, got, want)
			}
		}
		if resp.Header.Get("Last-Modified") == "" {
			t.Error("no Last-Modified")
		}
		// Percent-encoded, as some clients write the "+".
		if resp, b := get("/download/deskside-agent_1.2.3%2B4.gabc_amd64.deb"); resp.StatusCode != 200 || !bytes.Equal(b, deb) {
			t.Errorf("fetch with %%2B: %s", resp.Status)
		}
	})

	t.Run("head", func(t *testing.T) {
		resp, b := get("HEAD /download/deskside-agent_1.2.3+4.gabc_amd64.deb")
		if resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength != int64(len(deb)) {
			t.Errorf("HEAD: %s, length %d, %d body bytes", resp.Status, resp.ContentLength, len(b))
		}
	})

	t.Run("range", func(t *testing.T) {
		resp, b := get("/download/deskside-agent_1.2.3+4.gabc_amd64.deb", "Range", "bytes=100-199")
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, deb[100:200]) ||
			resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(deb)) {
			t.Errorf("range: %s %q, %d bytes", resp.Status, resp.Header.Get("Content-Range"), len(b))
		}
	})

	t.Run("conditional", func(t *testing.T) {
		resp, b := get("/download/deskside-agent_1.2.3+4.gabc_amd64.deb", "If-None-Match", `"`+debSum+`"`)
		if resp.StatusCode != http.StatusNotModified || len(b) != 0 {
			t.Errorf("If-None-Match the ETag: %s, %d bytes", resp.Status, len(b))
		}
		resp, _ = get("/download/deskside-agent_1.2.3+4.gabc_amd64.deb", "If-None-Match", `"other"`)
		if resp.StatusCode != 200 {
			t.Errorf("If-None-Match another ETag: %s", resp.Status)
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, target := range []string{
			"/download/notes.txt",
			"/download/deskside-relay_1.2.3_amd64.deb",
			"/download/.deskside-agent.msi",
			"/download/deskside-agent.msi",      // link to /etc/passwd
			"/download/deskside-agent-link.deb", // link inside
			"/download/deskside-agent-dir.rpm",  // a directory
			"/download/deskside-agent-missing.deb",
			"/download/../../../../etc/passwd",
			"/download/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
			"/download/%2E%2E%2Fnotes.txt",
			"/download/..%2f..%2f..%2fetc%2fpasswd",
			"/download/deskside-agent_x.deb/../notes.txt",
			"/download//etc/passwd",
			"/download/deskside-agent%00.deb",
			"/download/sub/deskside-agent.deb",
		} {
			status, body := rawGet(t, w, r, target)
			if status != http.StatusNotFound || strings.Contains(body, "root:") || strings.Contains(body, string(secret)) {
				t.Errorf("GET %s: %d, want 404\n%s", target, status, body)
			}
		}
		req, _ := http.NewRequest(http.MethodPost, w.base+"/download/deskside-agent_1.2.3+4.gabc_amd64.deb", nil)
		resp, err := w.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST: %s, want 405", resp.Status)
		}
	})

	t.Run("add while running", func(t *testing.T) {
		src := t.TempDir()
		msi := []byte("MSI bytes")
		for name, b := range map[string][]byte{"deskside-agent.msi": msi, "deskside-relay_1.2.3_amd64.deb": secret} {
			if err := os.WriteFile(filepath.Join(src, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// The link out is replaced by the real file.
		os.Remove(filepath.Join(dir, "deskside-agent.msi"))
		res, err := downloads.Add(dir, []string{filepath.Join(src, "deskside-agent.msi"), filepath.Join(src, "deskside-relay_1.2.3_amd64.deb")})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Added) != 1 || len(res.Skipped) != 1 {
			t.Errorf("add: %+v", res)
		}
		fi, err := os.Stat(filepath.Join(dir, "deskside-agent.msi"))
		if err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("added file: %v %v, want mode 0644", fi.Mode(), err)
		}
		resp, b := get("/download/deskside-agent.msi")
		if resp.StatusCode != 200 || !bytes.Equal(b, msi) || resp.Header.Get("Content-Type") != "application/x-msi" {
			t.Errorf("fetch of an added file: %s %s", resp.Status, resp.Header.Get("Content-Type"))
		}
		resp, b = get("/download/SHA256SUMS")
		m := sha256.Sum256(msi)
		want := hex.EncodeToString(m[:]) + "  deskside-agent.msi\n" + debSum + "  deskside-agent_1.2.3+4.gabc_amd64.deb\n"
		if resp.StatusCode != 200 || string(b) != want {
			t.Errorf("SHA256SUMS after add: %s\n%s\nwant\n%s", resp.Status, b, want)
		}
		// A file changed in place is hashed again (same size and name).
		if err := os.WriteFile(filepath.Join(dir, "deskside-agent.msi"), []byte("MSI BYTES"), 0o644); err != nil {
			t.Fatal(err)
		}
		future := time.Now().Add(time.Minute)
		os.Chtimes(filepath.Join(dir, "deskside-agent.msi"), future, future)
		resp, _ = get("/download/deskside-agent.msi")
		m = sha256.Sum256([]byte("MSI BYTES"))
		if resp.Header.Get("Etag") != `"`+hex.EncodeToString(m[:])+`"` {
			t.Errorf("ETag after a change: %s", resp.Header.Get("Etag"))
		}
	})
}

// rawGet sends target as the request line's target, unchanged by any
// client's URL handling, and returns the status and body.
func rawGet(t *testing.T, w *webClient, r *relay, target string) (int, string) {
	t.Helper()
	host := strings.TrimPrefix(w.base, "https://")
	c, err := tls.Dial("tcp", host, &tls.Config{RootCAs: r.caPool(), ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
