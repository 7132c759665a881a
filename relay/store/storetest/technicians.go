package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/deskside/deskside/relay/store"
)

var accountTests = []subtest{
	{"NewFieldsRoundTrip", testAccountFields},
	{"List", testListTechnicians},
	{"Edit", testEditTechnician},
	{"LastAdmin", testLastAdmin},
	{"LastAdminConcurrent", testLastAdminConcurrent},
	{"Delete", testDeleteTechnician},
	{"DeleteOtherSessions", testDeleteOtherSessions},
}

func admin(name string) store.Technician {
	t := technician(name)
	t.Role = store.RoleAdmin
	return t
}

// Disabled, must-change, groups and email round-trip through every read,
// ChargeLogin's included.
func testAccountFields(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := technician("alice")
	a.Disabled, a.MustChangePassword, a.Groups = true, true, []string{"lab", "Front desk", `quote"d`}
	a.Email = "alice@example.com"
	ok(t, s.CreateTechnician(ctx, a), "CreateTechnician")
	got, err := s.GetTechnician(ctx, "alice")
	ok(t, err, "GetTechnician")
	same(t, "GetTechnician", got, a)
	c, err := s.ChargeLogin(ctx, "alice", t0, chargeMax, chargeLock)
	ok(t, err, "ChargeLogin")
	a.FailedLogins = 1
	same(t, "ChargeLogin", c.Technician, a)
	// No groups reads back as nil, whatever was given.
	b := technician("bob")
	b.Groups = []string{}
	ok(t, s.CreateTechnician(ctx, b), "CreateTechnician(bob)")
	got, err = s.GetTechnician(ctx, "bob")
	ok(t, err, "GetTechnician(bob)")
	if got.Groups != nil || got.Disabled || got.MustChangePassword {
		t.Fatalf("bob = %+v, want no groups, enabled", got)
	}
}

func testListTechnicians(t *testing.T, s store.Store) {
	ctx := t.Context()
	l, err := s.ListTechnicians(ctx)
	ok(t, err, "ListTechnicians(empty)")
	if len(l) != 0 {
		t.Fatalf("ListTechnicians(empty) = %v", l)
	}
	var want []store.Technician
	for _, n := range []string{"carol", "Alice", "bob", "alice"} {
		x := technician(n)
		x.Groups = []string{"g-" + n}
		ok(t, s.CreateTechnician(ctx, x), "CreateTechnician(%s)", n)
		want = append(want, x)
	}
	// By name, byte-wise.
	slices.SortFunc(want, func(a, b store.Technician) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	l, err = s.ListTechnicians(ctx)
	ok(t, err, "ListTechnicians")
	same(t, "ListTechnicians", l, want)
}

func testEditTechnician(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.EditTechnician(ctx, "nobody", func(*store.Technician) error { return nil })
	wantErr(t, err, store.ErrNotFound, "EditTechnician(unknown)")

	a := technician("alice")
	a.FailedLogins, a.LockedUntil, a.TOTPLastStep = 3, t0, 77
	ok(t, s.CreateTechnician(ctx, a), "CreateTechnician")
	got, err := s.EditTechnician(ctx, "alice", func(x *store.Technician) error {
		x.Name = "renamed" // ignored
		x.PasswordHash, x.Role, x.TOTPSecret = "new-hash", 3, ""
		x.Disabled, x.MustChangePassword, x.Groups = true, true, []string{"lab"}
		x.Email = "alice@example.org"
		x.FailedLogins, x.TOTPLastStep = 0, 0 // not written
		return nil
	})
	ok(t, err, "EditTechnician")
	want := a
	want.PasswordHash, want.Role, want.TOTPSecret = "new-hash", 3, ""
	want.Disabled, want.MustChangePassword, want.Groups = true, true, []string{"lab"}
	want.Email = "alice@example.org"
	stored, err := s.GetTechnician(ctx, "alice")
	ok(t, err, "GetTechnician")
	same(t, "stored after EditTechnician", stored, want)
	if got.Name != "alice" || got.Role != 3 || !got.Disabled {
		t.Fatalf("EditTechnician returned %+v", got)
	}
	if _, err := s.GetTechnician(ctx, "renamed"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("EditTechnician renamed: %v", err)
	}

	// edit's error: returned, nothing stored.
	boom := errors.New("boom")
	_, err = s.EditTechnician(ctx, "alice", func(x *store.Technician) error {
		x.Role = 1
		return boom
	})
	wantErr(t, err, boom, "EditTechnician(failing edit)")
	stored, err = s.GetTechnician(ctx, "alice")
	ok(t, err, "GetTechnician")
	same(t, "stored after a failing edit", stored, want)
}

// The store keeps one enabled admin: demoting, disabling or deleting the
// last is ErrLastAdmin, and changes nothing; with two, one may go.
func testLastAdmin(t *testing.T, s store.Store) {
	ctx := t.Context()
	ok(t, s.CreateTechnician(ctx, admin("root")), "CreateTechnician(root)")
	ok(t, s.CreateTechnician(ctx, technician("tech")), "CreateTechnician(tech)")
	off := admin("off")
	off.Disabled = true
	ok(t, s.CreateTechnician(ctx, off), "CreateTechnician(off)")

	for what, edit := range map[string]func(*store.Technician){
		"demote":  func(x *store.Technician) { x.Role = 3 },
		"disable": func(x *store.Technician) { x.Disabled = true },
	} {
		_, err := s.EditTechnician(ctx, "root", func(x *store.Technician) error { edit(x); return nil })
		wantErr(t, err, store.ErrLastAdmin, "%s the last admin", what)
	}
	_, err := s.DeleteTechnician(ctx, "root")
	wantErr(t, err, store.ErrLastAdmin, "delete the last admin")
	got, err := s.GetTechnician(ctx, "root")
	ok(t, err, "GetTechnician(root)")
	same(t, "root after refusals", got, admin("root"))

	// Other changes to the last admin are fine, and so is anything done
	// to others (the disabled admin does not count).
	_, err = s.EditTechnician(ctx, "root", func(x *store.Technician) error { x.Groups = []string{"all"}; return nil })
	ok(t, err, "edit the last admin's groups")
	_, err = s.DeleteTechnician(ctx, "off")
	ok(t, err, "delete a disabled admin")

	// Enabling a second admin lets the first go.
	_, err = s.EditTechnician(ctx, "tech", func(x *store.Technician) error { x.Role = store.RoleAdmin; return nil })
	ok(t, err, "promote tech")
	_, err = s.EditTechnician(ctx, "root", func(x *store.Technician) error { x.Disabled = true; return nil })
	ok(t, err, "disable root with another admin")
	_, err = s.DeleteTechnician(ctx, "tech")
	wantErr(t, err, store.ErrLastAdmin, "delete the admin left")
}

// Admins removing each other at the same time: exactly one enabled admin
// is left.
func testLastAdminConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	names := []string{"a1", "a2", "a3", "a4"}
	for _, n := range names {
		ok(t, s.CreateTechnician(ctx, admin(n)), "CreateTechnician(%s)", n)
	}
	errs := barrier(len(names), func(i int) error {
		if i%2 == 0 {
			_, err := s.DeleteTechnician(ctx, names[i])
			return err
		}
		_, err := s.EditTechnician(ctx, names[i], func(x *store.Technician) error { x.Role = 1; return nil })
		return err
	})
	refused := 0
	for i, err := range errs {
		switch {
		case errors.Is(err, store.ErrLastAdmin):
			refused++
		case err != nil:
			t.Errorf("%s: %v", names[i], err)
		}
	}
	l, err := s.ListTechnicians(ctx)
	ok(t, err, "ListTechnicians")
	admins := 0
	for _, x := range l {
		if x.EnabledAdmin() {
			admins++
		}
	}
	if admins != 1 || refused != 1 {
		t.Fatalf("%d enabled admins left, %d refused; want 1 and 1", admins, refused)
	}
}

func testDeleteTechnician(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.DeleteTechnician(ctx, "nobody")
	wantErr(t, err, store.ErrNotFound, "DeleteTechnician(unknown)")
	ok(t, s.CreateTechnician(ctx, technician("alice")), "CreateTechnician")
	ok(t, s.CreateTechnician(ctx, technician("bob")), "CreateTechnician(bob)")
	for i, who := range []string{"alice", "alice", "bob"} {
		ok(t, s.CreateSession(ctx, store.Session{TokenHash: []byte{byte(i)}, Technician: who, CreatedAt: t0, ExpiresAt: t0.Add(1e12)}), "CreateSession")
	}
	ev, err := s.AppendAudit(ctx, store.AuditEvent{Time: t0, Actor: "alice", Action: "login", Target: "alice"}, store.AuditHash)
	ok(t, err, "AppendAudit")
	n, err := s.DeleteTechnician(ctx, "alice")
	ok(t, err, "DeleteTechnician")
	if n != 2 {
		t.Fatalf("DeleteTechnician ended %d sessions, want 2", n)
	}
	_, err = s.GetTechnician(ctx, "alice")
	wantErr(t, err, store.ErrNotFound, "GetTechnician(deleted)")
	_, err = s.GetSession(ctx, []byte{0})
	wantErr(t, err, store.ErrNotFound, "GetSession(deleted technician's)")
	if _, err := s.GetSession(ctx, []byte{2}); err != nil {
		t.Fatalf("bob's session: %v", err)
	}
	// The audit keeps the name; a new technician may take it.
	got, err := s.ListAudit(ctx, store.AuditFilter{Actor: "alice"})
	ok(t, err, "ListAudit")
	if len(got) != 1 || got[0].Hash != ev.Hash {
		t.Fatalf("audit of the deleted technician: %+v", got)
	}
	ok(t, s.CreateTechnician(ctx, technician("alice")), "CreateTechnician(alice again)")
}

func testDeleteOtherSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	ok(t, s.CreateTechnician(ctx, technician("alice")), "CreateTechnician")
	ok(t, s.CreateTechnician(ctx, technician("bob")), "CreateTechnician(bob)")
	for i, who := range []string{"alice", "alice", "alice", "bob"} {
		ok(t, s.CreateSession(ctx, store.Session{TokenHash: []byte{byte(i + 1)}, Technician: who, CreatedAt: t0, ExpiresAt: t0.Add(1e12)}), "CreateSession")
	}
	n, err := s.DeleteOtherSessions(ctx, "alice", []byte{2})
	ok(t, err, "DeleteOtherSessions")
	if n != 2 {
		t.Fatalf("DeleteOtherSessions = %d, want 2", n)
	}
	for h, want := range map[byte]bool{1: false, 2: true, 3: false, 4: true} {
		_, err := s.GetSession(ctx, []byte{h})
		if (err == nil) != want {
			t.Errorf("session %d: %v, want kept %v", h, err, want)
		}
	}
}
