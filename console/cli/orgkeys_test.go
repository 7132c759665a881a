package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/deskside/deskside/console/cli"
)

// TestOrgKeyFirstRun walks the first run offline: an admin creates the
// organisation key, a technician a key, the admin certifies it, the
// technician installs the certificate and is signing.
func TestOrgKeyFirstRun(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tech", "cli.json")
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := cli.Main(context.Background(), args, strings.NewReader(""), &stdout, &stderr, func(k string) string {
			if k == "DESKSIDE_CONFIG" {
				return cfg
			}
			return ""
		})
		return code, stdout.String(), stderr.String()
	}
	orgKey := filepath.Join(dir, "org-key.pem")
	code, out, errs := run("org", "init", orgKey)
	if code != 0 || !strings.Contains(out, "deskside-agent org pin ") {
		t.Fatalf("org init: %d %s %s", code, out, errs)
	}
	if st, _ := os.Stat(orgKey); st.Mode().Perm() != 0o600 {
		t.Fatalf("org key mode %v", st.Mode().Perm())
	}
	if _, out, _ = run("technician", "status"); !strings.Contains(out, "Not signing") {
		t.Fatalf("status before keygen: %s", out)
	}
	code, out, errs = run("technician", "keygen")
	pub := regexp.MustCompile(`Public key: (\S+)`).FindStringSubmatch(out)
	if code != 0 || pub == nil {
		t.Fatalf("keygen: %d %s %s", code, out, errs)
	}
	if st, _ := os.Stat(filepath.Join(dir, "tech", "technician-key.pem")); st.Mode().Perm() != 0o600 {
		t.Fatalf("technician key mode %v", st.Mode().Perm())
	}
	certFile := filepath.Join(dir, "alice.cert.pem")
	code, out, errs = run("technician", "certify", "alice", "--key", pub[1], "--role", "tier2", "--groups", "lab", "--expires", "30d", "--org-key", orgKey, "-o", certFile)
	if code != 0 {
		t.Fatalf("certify: %d %s %s", code, out, errs)
	}
	if code, out, errs = run("technician", "install-cert", certFile); code != 0 || !strings.Contains(out, "you sign as alice (tier2)") {
		t.Fatalf("install-cert: %d %s %s", code, out, errs)
	}
	if _, out, _ = run("technician", "status"); !strings.Contains(out, "Signing as alice (tier2, groups lab)") {
		t.Fatalf("status: %s", out)
	}
	// A certificate for another key is refused at install.
	code, _, errs = run("technician", "certify", "bob", "--key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "--role", "tier1", "--org-key", orgKey, "-o", filepath.Join(dir, "bob.pem"))
	if code != 0 {
		t.Fatalf("certify bob: %s", errs)
	}
	if code, _, errs = run("technician", "install-cert", filepath.Join(dir, "bob.pem")); code == 0 || !strings.Contains(errs, "another key") {
		t.Fatalf("install of another key's certificate: %d %s", code, errs)
	}
}
