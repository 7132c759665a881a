package cli_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/store"
)

func TestTechnicianUnlockAndResetPassword(t *testing.T) {
	r := startRelay(t)
	h, err := auth.HashPassword("tier-one-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Store().CreateTechnician(context.Background(), store.Technician{
		Name: "tier1", PasswordHash: h, Role: int(desksidev1.Role_ROLE_TIER1), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	t1 := r.cli(t)
	t1.login("tier1", "tier-one-password")
	t1.fails(1, "needs role admin", "technician", "unlock", "admin")
	t1.fails(1, "needs role admin", "technician", "reset-password", "admin")

	// Lock tier1 with wrong passwords.
	other := r.cli(t)
	for i := range auth.MaxFailures {
		other.stdin = fmt.Sprintf("wrong-password-%d\n", i)
		other.fails(1, "wrong name, password or TOTP code", "login", "--relay", r.addr, "--ca", r.caPath, "--user", "tier1", "--password-stdin")
	}
	other.stdin = "tier-one-password\n"
	other.fails(1, "deskside technician unlock NAME", "login", "--relay", r.addr, "--ca", r.caPath, "--user", "tier1", "--password-stdin")

	admin := r.cli(t)
	admin.login("admin", adminPassword)
	if res := admin.must("technician", "unlock", "tier1"); !strings.Contains(res.stdout, "Unlocked tier1") {
		t.Errorf("unlock: %s", res)
	}
	other.login("tier1", "tier-one-password")
	admin.fails(1, `no technician "nobody"`, "technician", "unlock", "nobody")
	admin.fails(2, "a technician NAME is required", "technician", "unlock")

	// A generated password, shown once; the old sessions end.
	res := admin.must("technician", "reset-password", "tier1", "-q")
	pw := strings.TrimSpace(res.stdout)
	if len(pw) < 20 {
		t.Fatalf("generated password %q", pw)
	}
	t1.fails(1, "deskside login", "whoami")
	// The next sign-in must change it first.
	t1.stdin = pw + "\n"
	t1.fails(1, "must be changed before anything else: run `deskside password`", "login", "--relay", r.addr, "--ca", r.caPath, "--user", "tier1", "--password-stdin")
	t1.fails(1, "run `deskside password`", "devices", "list")
	t1.stdin = pw + "\nthe tier-one passphrase\n"
	t1.must("password", "--password-stdin")
	t1.must("devices", "list")

	// A given one.
	admin.stdin = "a chosen new password\n"
	if res := admin.must("technician", "reset-password", "tier1", "--password-stdin"); strings.Contains(res.stdout, "chosen") || !strings.Contains(res.stdout, "1 of their sessions ended") {
		t.Errorf("reset with a given password: %s", res)
	}
	admin.stdin = "short\n"
	admin.fails(1, "at least 12 characters", "technician", "reset-password", "tier1", "--password-stdin")
	t1.stdin = "a chosen new password\n"
	t1.fails(1, "deskside password", "login", "--relay", r.addr, "--ca", r.caPath, "--user", "tier1", "--password-stdin")
}
