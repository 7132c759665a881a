package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/store"
)

// TestOrgKeyPublishRotateShow: an admin publishes the organisation key,
// sees it in the relay's chain and in new enrollment tokens, hands it over
// to a new key, and cannot publish from the old key afterwards.
func TestOrgKeyPublishRotateShow(t *testing.T) {
	r := startRelay(t)
	admin := r.cli(t)
	admin.login("admin", adminPassword)
	dir := t.TempDir()
	orgKey := filepath.Join(dir, "org-key.pem")

	res := admin.must("org", "show")
	if !strings.Contains(res.stdout, "holds no organisation key") || !strings.Contains(res.stdout, "deskside org publish") {
		t.Fatalf("show before publish: %s", res)
	}
	res = admin.must("token", "create")
	if !strings.Contains(res.stdout, "carries none") {
		t.Errorf("token create without a key: %s", res)
	}

	res = admin.must("org", "init", orgKey)
	m := regexp.MustCompile(`Fingerprint: (\S+)`).FindStringSubmatch(res.stdout)
	if m == nil || !strings.Contains(res.stdout, "deskside org publish --org-key "+orgKey) {
		t.Fatalf("org init does not print the fingerprint and the next step: %s", res)
	}
	fpA := m[1]
	res = admin.must("org", "publish", "--org-key", orgKey)
	if !strings.Contains(res.stdout, "Published organisation key "+fpA) {
		t.Fatalf("publish: %s", res)
	}
	admin.must("org", "publish", "--org-key", orgKey) // idempotent
	res = admin.must("org", "show")
	if !strings.Contains(res.stdout, " 1. published  "+fpA) || !strings.Contains(res.stdout, "Current organisation key: "+fpA) {
		t.Fatalf("show after publish: %s", res)
	}

	res = admin.must("token", "create", "--uses", "2")
	if !strings.Contains(res.stdout, "organisation key's fingerprint") || !strings.Contains(res.stdout, "  "+fpA+"\n") {
		t.Errorf("token create does not show and explain the fingerprint: %s", res)
	}
	res = admin.must("token", "create", "-q")
	if tok, err := wire.ParseToken(res.stdout); err != nil || tok.OrgFingerprint != fpA {
		t.Errorf("token %q: %+v %v", res.stdout, tok, err)
	}

	// Another key cannot take over without a hand-over.
	other := filepath.Join(dir, "other.pem")
	admin.must("org", "init", other)
	admin.fails(1, "deskside org rotate", "org", "publish", "--org-key", other)

	newKey := filepath.Join(dir, "org-key-2.pem")
	res = admin.must("org", "rotate", "--org-key", orgKey, "--new-key", newKey)
	m = regexp.MustCompile(`from \S+ to (\S+)\.`).FindStringSubmatch(res.stdout)
	if m == nil || !strings.Contains(res.stdout, "Keep "+orgKey) {
		t.Fatalf("rotate: %s", res)
	}
	fpB := m[1]
	if st, err := os.Stat(newKey); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new key file: %v %v", st, err)
	}
	res = admin.must("org", "show")
	if !strings.Contains(res.stdout, " 2. hand-over  "+fpA+" -> "+fpB) || !strings.Contains(res.stdout, "Current organisation key: "+fpB) {
		t.Fatalf("show after rotate: %s", res)
	}
	// The old key can no longer hand over (its hand-over is done).
	admin.fails(1, "relay's organisation key is "+fpB, "org", "rotate", "--org-key", orgKey, "--new-key", filepath.Join(dir, "org-key-3.pem"))
	admin.fails(2, "--new-key NEWFILE", "org", "rotate", "--org-key", orgKey)

	// A tier-1 technician reads the chain but cannot publish.
	addTechCLI(t, r, "tier1", "tier-one-password")
	t1 := r.cli(t)
	t1.login("tier1", "tier-one-password")
	if res := t1.must("org", "show"); !strings.Contains(res.stdout, fpB) {
		t.Errorf("tier1 show: %s", res)
	}
	t1.fails(1, "permission denied", "org", "publish", "--org-key", newKey)
}

func addTechCLI(t *testing.T, r *relay, name, password string) {
	t.Helper()
	h, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Store().CreateTechnician(context.Background(), store.Technician{
		Name: name, PasswordHash: h, Role: int(desksidev1.Role_ROLE_TIER1), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}
