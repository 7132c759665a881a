package linuxpkg

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/internal/testkit"
)

// TestSBOM builds deskside-package and checks its SBOM against `go
// version -m`: the toolchain and every module linked in, with purls, and
// the same bytes twice.
func TestSBOM(t *testing.T) {
	testkit.Heavy(t, "builds deskside-package")
	exe := filepath.Join(t.TempDir(), "deskside-package")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", exe, "../cmd/deskside-package").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	gov, err := exec.Command("go", "version", "-m", exe).Output()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1_800_000_000, 0)
	b, err := SBOM("deskside-test", "1.2.3", "deskside-test_1.2.3_amd64.deb", []string{exe}, at)
	if err != nil {
		t.Fatal(err)
	}
	again, err := SBOM("deskside-test", "1.2.3", "deskside-test_1.2.3_amd64.deb", []string{exe}, at)
	if err != nil || string(again) != string(b) {
		t.Fatalf("SBOM is not the same twice (%v)", err)
	}
	var doc spdxDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != "2027-01-15T08:00:00Z" {
		t.Errorf("header: %s created %s", doc.SPDXVersion, doc.CreationInfo.Created)
	}
	purls := map[string]bool{}
	ids := map[string]bool{}
	for _, p := range doc.Packages {
		if ids[p.SPDXID] {
			t.Errorf("SPDXID %s twice", p.SPDXID)
		}
		ids[p.SPDXID] = true
		for _, r := range p.ExternalRefs {
			purls[r.Locator] = true
		}
	}
	if !purls["pkg:golang/stdlib@"+runtime.Version()] {
		t.Errorf("no purl for the toolchain %s", runtime.Version())
	}
	// go.mod has no replace directives, so every dep line is what is linked.
	deps := 0
	for line := range strings.Lines(string(gov)) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "dep" {
			deps++
			if !purls["pkg:golang/"+f[1]+"@"+f[2]] {
				t.Errorf("go version -m lists %s %s, the SBOM does not", f[1], f[2])
			}
		}
	}
	if deps < 10 || !purls["pkg:golang/github.com/goreleaser/nfpm/v2@v2.48.0"] {
		t.Errorf("the SBOM lacks the modules of deskside-package (%d in go version -m; nfpm v2.48.0 missing?)", deps)
	}
	for _, r := range doc.Relationships {
		if !ids[r.Related] || (r.Element != "SPDXRef-DOCUMENT" && !ids[r.Element]) {
			t.Errorf("relationship %+v names a package the SBOM does not hold", r)
		}
	}
	if doc.Packages[1].Checksums[0].Algorithm != "SHA256" || len(doc.Packages[1].Checksums[0].Value) != 64 {
		t.Errorf("binary checksum: %+v", doc.Packages[1].Checksums)
	}
	if _, err := SBOM("x", "1", "x.deb", []string{"/nonexistent/binary"}, at); err == nil {
		t.Error("SBOM of a missing binary: no error")
	}
}
