package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/console/cli"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// fingerprintIn returns the key fingerprint keygen printed.
func fingerprintIn(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`Fingerprint: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no fingerprint in %q", out)
	}
	return m[1]
}

// runAt runs the CLI with its clock set to now.
func (c *cliEnv) runAt(now time.Time, args ...string) result {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	app := &cli.App{Now: func() time.Time { return now }}
	code := app.Main(context.Background(), args, strings.NewReader(""), &stdout, &stderr, func(k string) string {
		if k == "DESKSIDE_CONFIG" {
			return c.cfg
		}
		return c.env[k]
	})
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// TestTechnicianKeyFirstRun walks the first run through a real relay:
// keygen registers the key, status says whom to ask, the admin certifies
// the registered key without a key file, status picks the certificate up
// from the relay; then the expired and revoked states, and what a tier1
// may not do.
func TestTechnicianKeyFirstRun(t *testing.T) {
	f := startFleet(t)
	admin := f.admin(t)
	alice := f.tech(t, "alice", desksidev1.Role_ROLE_TIER2)
	bob := f.tech(t, "bob", desksidev1.Role_ROLE_TIER1)
	orgKey := filepath.Join(t.TempDir(), "org-key.pem")
	admin.must("org", "init", orgKey)

	if res := alice.must("technician", "status"); !strings.Contains(res.stdout, "no technician key") || !strings.Contains(res.stdout, "deskside technician keygen") {
		t.Errorf("status without a key: %s", res)
	}
	res := alice.must("technician", "keygen")
	fp := fingerprintIn(t, res.stdout)
	if !strings.Contains(res.stdout, "Registered on the relay as alice's key") || !strings.Contains(res.stdout, "Ask an admin to run: deskside technician certify alice --org-key") {
		t.Errorf("keygen: %s", res)
	}
	res = alice.must("technician", "status")
	if !strings.Contains(res.stdout, "waits for an admin's certificate") || !strings.Contains(res.stdout, "deskside technician certify alice") || !strings.Contains(res.stdout, fp) {
		t.Errorf("status while waiting: %s", res)
	}
	if res := admin.must("technician", "keys", "--all"); !strings.Contains(res.stdout, fp) || !strings.Contains(res.stdout, "waiting for an admin's certificate") {
		t.Errorf("admin's key list: %s", res)
	}

	t.Run("tier1 cannot see or certify others' keys", func(t *testing.T) {
		bob.fails(1, "only an admin", "technician", "keys", "alice")
		bob.fails(1, "only an admin", "technician", "keys", "--all")
		bob.fails(1, "only an admin", "technician", "certify", "alice", "--org-key", orgKey)
		bob.fails(1, "only an admin", "technician", "delete-key", "--technician", "alice", fp)
		// bob's own certificate, signed with a stolen org key, is not his
		// to publish either.
		bob.must("technician", "keygen")
		bob.fails(1, "needs role admin", "technician", "certify", "bob", "--org-key", orgKey, "--role", "admin")
	})

	res = admin.must("technician", "certify", "alice", "--org-key", orgKey, "--role", "tier2", "--groups", "lab", "--days", "30")
	if !strings.Contains(res.stdout, fp) || !strings.Contains(res.stdout, "published the certificate on the relay") {
		t.Errorf("certify: %s", res)
	}
	_, certPath := techFiles(alice)
	if _, err := os.Stat(certPath); err == nil {
		t.Fatal("certificate installed before the CLI asked the relay")
	}
	res = alice.must("technician", "status")
	if !strings.Contains(res.stdout, "Signing as alice (tier2, groups lab) until "+time.Now().Add(30*24*time.Hour).UTC().Format(time.DateOnly)) ||
		!strings.Contains(res.stderr, "installed your certificate from the relay") {
		t.Errorf("status once certified: %s", res)
	}
	if st, err := os.Stat(certPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("installed certificate: %v", err)
	}
	if res := alice.must("technician", "keys"); !strings.Contains(res.stdout, "certified tier2, groups lab") || !strings.Contains(res.stdout, "(this machine)") {
		t.Errorf("own keys: %s", res)
	}
	admin.fails(1, "has no key waiting", "technician", "certify", "alice", "--org-key", orgKey)

	t.Run("expired", func(t *testing.T) {
		res := alice.runAt(time.Now().Add(40*24*time.Hour), "technician", "status")
		if !strings.Contains(res.stdout, "Expired") || !strings.Contains(res.stdout, "deskside technician certify alice --org-key ORG-KEY-FILE --role tier2 --fingerprint "+fp) {
			t.Errorf("status once expired: %s", res)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		admin.must("technician", "revoke", "alice", "--org-key", orgKey)
		res := alice.must("technician", "status")
		if !strings.Contains(res.stdout, "Revoked") || !strings.Contains(res.stdout, "Talk to an admin") {
			t.Errorf("status once revoked: %s", res)
		}
		if res := admin.must("technician", "keys", "alice"); !strings.Contains(res.stdout, "revoked") {
			t.Errorf("admin's list after revocation: %s", res)
		}
	})
}

// techFiles are a CLI's technician key and certificate files.
func techFiles(c *cliEnv) (key, cert string) {
	d := filepath.Dir(c.cfg)
	return filepath.Join(d, "technician-key.pem"), filepath.Join(d, "technician-cert.pem")
}

// TestCertifyPicksAKey: with several keys waiting, the admin names one by
// fingerprint; a key the organisation key of the relay's chain did not
// sign is refused.
func TestCertifyPicksAKey(t *testing.T) {
	f := startFleet(t)
	admin := f.admin(t)
	laptop := f.tech(t, "dave", desksidev1.Role_ROLE_TIER2)
	desk := f.cli(t)
	desk.login("dave", "technician-password-1")
	fp1 := fingerprintIn(t, laptop.must("technician", "keygen", "--label", "laptop").stdout)
	fp2 := fingerprintIn(t, desk.must("technician", "keygen", "--label", "desk").stdout)
	orgKey := filepath.Join(t.TempDir(), "org-key.pem")
	admin.must("org", "init", orgKey)

	res := admin.fails(1, "--fingerprint", "technician", "certify", "dave", "--org-key", orgKey)
	if !strings.Contains(res.stdout, fp1) || !strings.Contains(res.stdout, fp2) {
		t.Errorf("several waiting keys not listed: %s", res)
	}
	admin.must("technician", "certify", "dave", "--org-key", orgKey, "--fingerprint", fp2)
	if res := desk.must("technician", "status"); !strings.Contains(res.stdout, "Signing as dave") {
		t.Errorf("certified key's status: %s", res)
	}
	if res := laptop.must("technician", "status"); !strings.Contains(res.stdout, "waits for an admin's certificate") {
		t.Errorf("other key's status: %s", res)
	}

	// The organisation key is published on the relay: another key's
	// certificates are refused.
	_, otherOrg := filepath.Split(orgKey)
	otherOrg = filepath.Join(t.TempDir(), otherOrg)
	admin.must("org", "init", otherOrg)
	admin.must("org", "publish", "--org-key", orgKey)
	admin.fails(1, "certify with the organisation key", "technician", "certify", "dave", "--org-key", otherOrg)
	admin.must("technician", "certify", "dave", "--org-key", orgKey)
	if res := laptop.must("technician", "status"); !strings.Contains(res.stdout, "Signing as dave") {
		t.Errorf("status: %s", res)
	}

	// Deleting a key.
	laptop.must("technician", "delete-key", fp1)
	if res := admin.must("technician", "keys", "dave"); strings.Contains(res.stdout, fp1) || !strings.Contains(res.stdout, fp2) {
		t.Errorf("keys after delete: %s", res)
	}
}
