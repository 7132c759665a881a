package cli_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deskside/deskside/relay/pki"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
)

// TestTechnicianAccounts drives the account commands through the real
// CLI and a real relay, on both stores: add (generated password), the
// first sign-in's password change, list, set, disable and enable, delete
// with the audit kept, and the refusals with their next steps.
func TestTechnicianAccounts(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var o servertest.Options
			if backend == "postgres" {
				o.Database = pgtest.DSN(t)
			}
			sr := servertest.Start(t, o)
			r := &relay{srv: sr.Srv, addr: sr.Addr, caPath: filepath.Join(sr.Dir, pki.CAFile), outputs: new(bytes.Buffer)}
			technicianAccounts(t, r)
		})
	}
}

func technicianAccounts(t *testing.T, r *relay) {
	admin := r.cli(t)
	admin.login("admin", servertest.AdminPassword)

	res := admin.must("technician", "add", "alice", "--role", "tier1", "--groups", "lab, front-desk")
	if !strings.Contains(res.stdout, "Added alice (role tier1, groups front-desk, lab)") || !strings.Contains(res.stdout, "deskside login --user alice") {
		t.Fatalf("add: %s", res)
	}
	pw := strings.TrimSpace(strings.SplitN(strings.SplitN(res.stdout, "\n\n", 3)[1], "\n", 2)[0])
	if len(pw) < 12 {
		t.Fatalf("generated password %q from %s", pw, res)
	}
	admin.fails(2, "--role is required", "technician", "add", "bob")
	admin.fails(2, "use tier1, tier2, tier3 or admin", "technician", "add", "bob", "--role", "boss")
	admin.fails(1, "exists already", "technician", "add", "alice", "--role", "tier2")
	admin.stdin = "Carol-is-my-password\n"
	admin.fails(1, "contains the technician's name", "technician", "add", "carol", "--role", "tier2", "--password-stdin")
	admin.stdin = "a long enough password\n"
	if res := admin.must("technician", "add", "bob", "--role", "tier2", "--password-stdin"); strings.Contains(res.stdout, "a long enough") {
		t.Fatalf("add printed the given password: %s", res)
	}

	// The first sign-in leads to the password change.
	alice := r.cli(t)
	alice.stdin = pw + "\n"
	alice.fails(1, "run `deskside password`", "login", "--relay", r.addr, "--ca", r.caPath, "--user", "alice", "--password-stdin")
	alice.fails(1, "must be changed", "devices", "list")
	alice.stdin = pw + "\nqwerty123456\n"
	alice.fails(1, "common passwords", "password", "--password-stdin")
	alice.stdin = "not her password\nher own passphrase\n"
	alice.fails(1, "wrong current password", "password", "--password-stdin")
	alice.stdin = pw + "\n"
	alice.fails(1, "two lines", "password", "--password-stdin")
	alice.stdin = pw + "\nher own passphrase\n"
	if res := alice.must("password", "--password-stdin"); !strings.Contains(res.stdout, "Password changed") {
		t.Fatalf("password: %s", res)
	}
	alice.must("devices", "list")
	alice.fails(1, "needs role admin", "technician", "list")

	// list, set.
	res = admin.must("technician", "list")
	for _, want := range []string{"alice", "tier1", "front-desk,lab", "active", "bob", "must change password"} {
		if !strings.Contains(res.stdout, want) {
			t.Fatalf("list lacks %q: %s", want, res)
		}
	}
	var listed []map[string]any
	if err := json.Unmarshal([]byte(admin.must("technician", "list", "--json").stdout), &listed); err != nil || len(listed) != 3 {
		t.Fatalf("list --json: %v %v", listed, err)
	}
	admin.fails(2, "nothing to change", "technician", "set", "alice")
	admin.fails(2, "contradict", "technician", "set", "alice", "--groups", "x", "--all-groups")
	if res := admin.must("technician", "set", "alice", "--role", "tier3", "--all-groups"); !strings.Contains(res.stdout, "alice is now tier3, all groups") {
		t.Fatalf("set: %s", res)
	}
	alice.must("whoami")
	if res := alice.must("whoami"); !strings.Contains(res.stdout, "role tier3") {
		t.Fatalf("whoami after set: %s", res)
	}
	admin.fails(1, "deskside technician set NAME --role admin", "technician", "set", "admin", "--role", "tier1")

	// disable, enable.
	if res := admin.must("technician", "disable", "alice"); !strings.Contains(res.stdout, "1 of their sessions ended") {
		t.Fatalf("disable: %s", res)
	}
	alice.fails(1, "deskside login", "whoami")
	alice.stdin = "her own passphrase\n"
	alice.fails(1, "deskside technician enable NAME", "login", "--relay", r.addr, "--ca", r.caPath, "--user", "alice", "--password-stdin")
	admin.fails(1, "your own account", "technician", "disable", "admin")
	admin.must("technician", "enable", "alice")
	alice.login("alice", "her own passphrase")

	// delete: the audit keeps her name.
	admin.fails(1, "your own account", "technician", "delete", "admin")
	admin.fails(1, "deskside technician list", "technician", "delete", "nobody")
	if res := admin.must("technician", "delete", "alice"); !strings.Contains(res.stdout, "Deleted alice; 1 of their sessions ended") {
		t.Fatalf("delete: %s", res)
	}
	alice.fails(1, "deskside login", "whoami")
	if res := admin.must("audit", "--actor", "alice"); !strings.Contains(res.stdout, "technician.password_change") {
		t.Fatalf("audit of the deleted technician: %s", res)
	}
	evs, err := r.srv.Store().ListAudit(t.Context(), store.AuditFilter{Actor: "admin", Action: "technician.*"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Action] = true
		if strings.Contains(e.Detail, pw) || strings.Contains(e.Detail, "a long enough password") {
			t.Fatalf("audit %s holds a password: %q", e.Action, e.Detail)
		}
	}
	for _, a := range []string{"technician.create", "technician.update", "technician.disable", "technician.enable", "technician.delete", "technician.create.refused", "technician.update.refused"} {
		if !seen[a] {
			t.Errorf("no %s in the audit log (have %v)", a, seen)
		}
	}
}
