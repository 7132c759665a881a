package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func readDist(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(Files(), name)
	if err != nil {
		t.Fatalf("dist/%s: %v (run `make web`)", name, err)
	}
	if len(b) == 0 {
		t.Fatalf("dist/%s is empty (run `make web`)", name)
	}
	return b
}

func shortHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}

// TestFiles checks that the embedded console is complete.
func TestFiles(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "app.css"} {
		readDist(t, name)
	}
}

// TestIndexReferencesOnlyTheBundle checks index.html against the relay's
// Content-Security-Policy: one external script and one external stylesheet
// (versioned by their content), nothing inline, nothing from elsewhere.
func TestIndexReferencesOnlyTheBundle(t *testing.T) {
	html := string(readDist(t, "index.html"))
	appJS, appCSS := readDist(t, "app.js"), readDist(t, "app.css")

	scripts := regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script\s*>`).FindAllStringSubmatch(html, -1)
	if len(scripts) != 1 {
		t.Fatalf("index.html has %d <script> elements, want 1", len(scripts))
	}
	if strings.TrimSpace(scripts[0][2]) != "" {
		t.Errorf("index.html has an inline script: %q", scripts[0][2])
	}
	if n := strings.Count(strings.ToLower(html), "<script"); n != 1 {
		t.Errorf("index.html has %d <script tags, want 1", n)
	}
	if regexp.MustCompile(`(?i)<style\b`).MatchString(html) {
		t.Error("index.html has an inline <style>")
	}
	if m := regexp.MustCompile(`(?i)\s(style|on[a-z]+)\s*=`).FindString(html); m != "" {
		t.Errorf("index.html has an inline %q attribute", strings.TrimSpace(m))
	}

	var refs []string
	for _, m := range regexp.MustCompile(`(?i)\s(?:src|href)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(html, -1) {
		refs = append(refs, m[1])
	}
	want := []string{"/app.js?v=" + shortHash(appJS), "/app.css?v=" + shortHash(appCSS), "data:,"}
	for _, r := range refs {
		if !slices.Contains(want, r) {
			t.Errorf("index.html references %q; want only %q (a stale index.html? run `make web`)", r, want)
		}
	}
	for _, w := range want[:2] {
		if !slices.Contains(refs, w) {
			t.Errorf("index.html does not reference %q (run `make web`)", w)
		}
	}
	if !regexp.MustCompile(`(?i)<link\s+rel="stylesheet"\s+href="/app\.css\?v=`).MatchString(html) {
		t.Error("index.html does not load /app.css as a stylesheet")
	}
}

// TestBundleAvoidsUnsafeSinks is a static check of what the CSP and the
// hostile-agent rule forbid: no HTML parsing of strings, no eval. The one
// exception is src/richtext.ts, which parses the relay's rendered and
// sanitized knowledge-base articles into an inert <template> and checks
// them again (docs/adr 23): exactly one innerHTML in the bundle, and in the
// sources only there.
func TestBundleAvoidsUnsafeSinks(t *testing.T) {
	js := readDist(t, "app.js")
	for _, bad := range []string{"outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute(\"style\"", "createContextualFragment", "DOMParser", "setHTML"} {
		if bytes.Contains(js, []byte(bad)) {
			t.Errorf("app.js contains %q", bad)
		}
	}
	if n := bytes.Count(js, []byte("innerHTML")); n != 1 {
		t.Errorf("app.js contains innerHTML %d times, want once (src/richtext.ts)", n)
	}
	err := filepath.WalkDir("src", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".ts") || strings.Contains(filepath.ToSlash(p), "/gen/") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		want := 0
		if filepath.ToSlash(p) == "src/richtext.ts" {
			want = 1
		}
		if n := bytes.Count(b, []byte(".innerHTML")); n != want {
			t.Errorf("%s uses .innerHTML %d times, want %d (only richtext.ts may parse HTML)", p, n, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDistIsCurrent recomputes the hash of everything the build reads
// (build.mjs does the same and writes it into index.html): a mismatch means
// src/ or the API's .proto files changed and dist/ was not rebuilt.
func TestDistIsCurrent(t *testing.T) {
	html := string(readDist(t, "index.html"))
	m := regexp.MustCompile(`<meta name="deskside-source" content="sha256:([0-9a-f]{64})">`).FindStringSubmatch(html)
	if m == nil {
		t.Fatal("index.html has no deskside-source hash (run `make web`)")
	}
	files := []string{
		"build.mjs", "package.json", "package-lock.json", "tsconfig.json",
		"../../proto/buf.gen.web.yaml", "../../proto/deskside/v1/console.proto", "../../proto/deskside/v1/inventory.proto", "../../proto/deskside/v1/diag.proto", "../../proto/deskside/v1/desktop.proto", "../../proto/deskside/v1/envelope.proto", "../../proto/deskside/v1/kb.proto", "../../proto/deskside/v1/reports.proto", "../../proto/deskside/v1/technicians.proto", "../../proto/deskside/v1/tickets.proto", "../../proto/deskside/v1/notify.proto", "../../proto/deskside/v1/release.proto",
	}
	err := filepath.WalkDir("src", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, filepath.ToSlash(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.FromSlash(f))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
		h.Write([]byte(f + "\x00"))
		h.Write(b)
		h.Write([]byte{0})
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m[1] {
		t.Errorf("dist/ was built from other sources (sha256 %s, sources now %s): after a change to console/web or to "+
			"console.proto/inventory.proto, run `make web` (it regenerates src/gen and rebuilds dist/) and commit both", m[1], got)
	}
}
