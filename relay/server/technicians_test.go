package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
)

// techClients are a signed-in technician's clients.
type techClients struct {
	cs  desksidev1.ConsoleServiceClient
	ts  desksidev1.TechnicianServiceClient
	ctx context.Context
}

func signIn(t *testing.T, r *servertest.Relay, name, pw string) techClients {
	t.Helper()
	cs, ctx := r.Console(t, name, pw)
	return techClients{cs: cs, ts: desksidev1.NewTechnicianServiceClient(r.Dial(t)), ctx: ctx}
}

func wantCode(t *testing.T, err error, code codes.Code, text, what string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(err.Error(), text) {
		t.Fatalf("%s: %v; want %s containing %q", what, err, code, text)
	}
}

// TestTechnicianLifecycle drives an account through a real relay on both
// stores: created by an admin with a generated password that must be
// changed first, changed (other sessions end), re-tiered, disabled (its
// session dies at once) and enabled, reset, deleted with its audit
// records kept; and the refusals: yourself, the last admin, weak
// passwords, other tiers.
func TestTechnicianLifecycle(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { technicianLifecycle(t, servertest.Options{}) })
	t.Run("postgres", func(t *testing.T) { technicianLifecycle(t, servertest.Options{Database: pgtest.DSN(t)}) })
}

func technicianLifecycle(t *testing.T, o servertest.Options) {
	r := servertest.Start(t, o)
	admin := signIn(t, r, "admin", servertest.AdminPassword)
	ctx := admin.ctx

	created, err := admin.ts.CreateTechnician(ctx, &desksidev1.CreateTechnicianRequest{Name: "alice", Role: desksidev1.Role_ROLE_TIER1, Groups: []string{"lab", " front desk "}})
	if err != nil {
		t.Fatal(err)
	}
	pw := created.GetPassword()
	if len(pw) < 12 || !created.GetTechnician().GetMustChangePassword() || strings.Join(created.GetTechnician().GetGroups(), ",") != "front desk,lab" {
		t.Fatalf("created %v", created)
	}
	_, err = admin.ts.CreateTechnician(ctx, &desksidev1.CreateTechnicianRequest{Name: "alice", Role: desksidev1.Role_ROLE_TIER2})
	wantCode(t, err, codes.AlreadyExists, "exists already", "duplicate")
	_, err = admin.ts.CreateTechnician(ctx, &desksidev1.CreateTechnicianRequest{Name: "bob", Role: desksidev1.Role_ROLE_TIER2, Password: "password1234"})
	wantCode(t, err, codes.InvalidArgument, "common passwords", "common password")
	_, err = admin.ts.CreateTechnician(ctx, &desksidev1.CreateTechnicianRequest{Name: "bob smith", Role: desksidev1.Role_ROLE_TIER2})
	wantCode(t, err, codes.InvalidArgument, "use letters, digits", "bad name")
	_, err = admin.ts.CreateTechnician(ctx, &desksidev1.CreateTechnicianRequest{Name: "bob"})
	wantCode(t, err, codes.InvalidArgument, "a role is required", "no role")
	auditHas(t, r, "admin", "technician.create.refused", "bob")

	list, err := admin.ts.ListTechnicians(ctx, &desksidev1.ListTechniciansRequest{})
	if err != nil || len(list.GetTechnicians()) != 2 || list.GetTechnicians()[1].GetName() != "alice" {
		t.Fatalf("list %v, %v", list, err)
	}

	// The first sign-in: only the password change is open.
	login, err := admin.cs.Login(t.Context(), &desksidev1.LoginRequest{Name: "alice", Password: pw})
	if err != nil || !login.GetTechnician().GetMustChangePassword() {
		t.Fatalf("alice's first sign-in: %v, %v", login, err)
	}
	alice := signIn(t, r, "alice", pw)
	_, err = alice.cs.ListDevices(alice.ctx, &desksidev1.ListDevicesRequest{})
	wantCode(t, err, codes.FailedPrecondition, "run `deskside password`", "list devices before the change")
	if who, err := alice.cs.WhoAmI(alice.ctx, &desksidev1.WhoAmIRequest{}); err != nil || !who.GetTechnician().GetMustChangePassword() {
		t.Fatalf("whoami: %v, %v", who, err)
	}
	_, err = alice.ts.ChangePassword(alice.ctx, &desksidev1.ChangePasswordRequest{CurrentPassword: "wrong-password-here", NewPassword: "a new long passphrase"})
	wantCode(t, err, codes.InvalidArgument, "wrong current password", "wrong current password")
	auditHas(t, r, "alice", "technician.password_change.failed", "alice")
	for _, weak := range []string{"short", "Alice-the-technician", "qwerty123456", pw} {
		_, err = alice.ts.ChangePassword(alice.ctx, &desksidev1.ChangePasswordRequest{CurrentPassword: pw, NewPassword: weak})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("weak new password %q: %v", weak, err)
		}
	}
	other := signIn(t, r, "alice", pw) // a second session, ended by the change
	const pw2 = "a new long passphrase"
	ch, err := alice.ts.ChangePassword(alice.ctx, &desksidev1.ChangePasswordRequest{CurrentPassword: pw, NewPassword: pw2})
	if err != nil || ch.GetSessionsEnded() != 2 { // the Login above and other
		t.Fatalf("change: %v, %v", ch, err)
	}
	if _, err := alice.cs.ListDevices(alice.ctx, &desksidev1.ListDevicesRequest{}); err != nil {
		t.Fatalf("after the change, the changing session works: %v", err)
	}
	_, err = other.cs.WhoAmI(other.ctx, &desksidev1.WhoAmIRequest{})
	wantCode(t, err, codes.Unauthenticated, "deskside login", "the other session")
	auditHas(t, r, "alice", "technician.password_change", "alice")

	// Tier and groups: effective at the next call.
	_, err = alice.cs.RunAction(alice.ctx, &desksidev1.RunActionRequest{DeviceId: "dev-nope"})
	wantCode(t, err, codes.PermissionDenied, "needs role tier2", "tier1 action")
	up, err := admin.ts.UpdateTechnician(ctx, &desksidev1.UpdateTechnicianRequest{Name: "alice", Role: desksidev1.Role_ROLE_TIER2, SetGroups: true})
	if err != nil || up.GetTechnician().GetRole() != desksidev1.Role_ROLE_TIER2 || len(up.GetTechnician().GetGroups()) != 0 {
		t.Fatalf("update: %v, %v", up, err)
	}
	if ev := auditHas(t, r, "admin", "technician.update", "alice"); !strings.Contains(ev.Detail, "role tier1 → tier2") || !strings.Contains(ev.Detail, "groups front desk, lab → all groups") {
		t.Fatalf("update audit %q", ev.Detail)
	}
	_, err = alice.cs.RunAction(alice.ctx, &desksidev1.RunActionRequest{DeviceId: "dev-nope"})
	wantCode(t, err, codes.NotFound, "dev-nope", "tier2 action")
	_, err = admin.ts.UpdateTechnician(ctx, &desksidev1.UpdateTechnicianRequest{Name: "alice"})
	wantCode(t, err, codes.InvalidArgument, "nothing to change", "empty update")
	_, err = alice.ts.ListTechnicians(alice.ctx, &desksidev1.ListTechniciansRequest{})
	wantCode(t, err, codes.PermissionDenied, "needs role admin", "tier2 lists technicians")

	// Disabled: the session dies at once, sign-in is refused.
	dis, err := admin.ts.SetTechnicianDisabled(ctx, &desksidev1.SetTechnicianDisabledRequest{Name: "alice", Disabled: true})
	if err != nil || !dis.GetTechnician().GetDisabled() || dis.GetSessionsEnded() != 1 {
		t.Fatalf("disable: %v, %v", dis, err)
	}
	_, err = alice.cs.WhoAmI(alice.ctx, &desksidev1.WhoAmIRequest{})
	wantCode(t, err, codes.Unauthenticated, "", "disabled technician's session")
	_, err = admin.cs.Login(t.Context(), &desksidev1.LoginRequest{Name: "alice", Password: pw2})
	wantCode(t, err, codes.PermissionDenied, "disabled", "disabled sign-in")
	_, err = admin.cs.Login(t.Context(), &desksidev1.LoginRequest{Name: "alice", Password: "not-her-password"})
	wantCode(t, err, codes.Unauthenticated, "wrong name, password", "disabled sign-in, wrong password: says nothing")
	if _, err := admin.ts.SetTechnicianDisabled(ctx, &desksidev1.SetTechnicianDisabledRequest{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	alice = signIn(t, r, "alice", pw2)
	auditHas(t, r, "admin", "technician.disable", "alice")
	auditHas(t, r, "admin", "technician.enable", "alice")

	// Yourself and the last admin.
	_, err = admin.ts.SetTechnicianDisabled(ctx, &desksidev1.SetTechnicianDisabledRequest{Name: "admin", Disabled: true})
	wantCode(t, err, codes.FailedPrecondition, "your own account", "disable yourself")
	_, err = admin.ts.DeleteTechnician(ctx, &desksidev1.DeleteTechnicianRequest{Name: "admin"})
	wantCode(t, err, codes.FailedPrecondition, "your own account", "delete yourself")
	_, err = admin.ts.UpdateTechnician(ctx, &desksidev1.UpdateTechnicianRequest{Name: "admin", Role: desksidev1.Role_ROLE_TIER3})
	wantCode(t, err, codes.FailedPrecondition, "only enabled admin", "demote the last admin")
	auditHas(t, r, "admin", "technician.update.refused", "admin")
	_, err = admin.ts.DeleteTechnician(ctx, &desksidev1.DeleteTechnicianRequest{Name: "nobody"})
	wantCode(t, err, codes.NotFound, "deskside technician list", "delete an unknown technician")

	// An admin's reset: the next sign-in must change it again.
	reset, err := admin.cs.ResetTechnicianPassword(ctx, &desksidev1.ResetTechnicianPasswordRequest{Name: "alice"})
	if err != nil || reset.GetSessionsEnded() != 1 || reset.GetPassword() == "" {
		t.Fatalf("reset: %v, %v", reset, err)
	}
	alice = signIn(t, r, "alice", reset.GetPassword())
	_, err = alice.cs.ListDevices(alice.ctx, &desksidev1.ListDevicesRequest{})
	wantCode(t, err, codes.FailedPrecondition, "must be changed", "after a reset")
	_, err = admin.cs.ResetTechnicianPassword(ctx, &desksidev1.ResetTechnicianPasswordRequest{Name: "alice", NewPassword: "alice-alice-alice"})
	wantCode(t, err, codes.InvalidArgument, "contains the technician's name", "reset to a weak password")

	// Deleted: sessions end, the audit keeps the name, the name is free.
	del, err := admin.ts.DeleteTechnician(ctx, &desksidev1.DeleteTechnicianRequest{Name: "alice"})
	if err != nil || del.GetSessionsEnded() != 1 {
		t.Fatalf("delete: %v, %v", del, err)
	}
	_, err = alice.cs.WhoAmI(alice.ctx, &desksidev1.WhoAmIRequest{})
	wantCode(t, err, codes.Unauthenticated, "", "deleted technician's session")
	evs, err := admin.cs.ListAuditEvents(ctx, &desksidev1.ListAuditEventsRequest{Actor: "alice"})
	if err != nil || len(evs.GetEvents()) < 3 {
		t.Fatalf("audit of the deleted technician: %v, %v", evs, err)
	}
	auditHas(t, r, "admin", "technician.delete", "alice")
	if _, err := r.Srv.Store().GetTechnician(t.Context(), "alice"); err == nil {
		t.Fatal("alice still stored")
	}
	if _, err := admin.ts.CreateTechnician(ctx, &desksidev1.CreateTechnicianRequest{Name: "alice", Role: desksidev1.Role_ROLE_TIER1}); err != nil {
		t.Fatalf("a new alice: %v", err)
	}
	// A second admin lets the first be demoted.
	if _, err := admin.ts.UpdateTechnician(ctx, &desksidev1.UpdateTechnicianRequest{Name: "alice", Role: desksidev1.Role_ROLE_ADMIN}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ts.UpdateTechnician(ctx, &desksidev1.UpdateTechnicianRequest{Name: "admin", Role: desksidev1.Role_ROLE_TIER3}); err != nil {
		t.Fatalf("demote with another admin: %v", err)
	}
	_, err = admin.ts.ListTechnicians(ctx, &desksidev1.ListTechniciansRequest{})
	wantCode(t, err, codes.PermissionDenied, "needs role admin", "demoted admin")

	// No password in any audit record.
	all, err := r.Srv.Store().ListAudit(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		for _, secret := range []string{pw, pw2, reset.GetPassword()} {
			if strings.Contains(e.Detail, secret) {
				t.Fatalf("audit %s %q holds a password", e.Action, e.Detail)
			}
		}
	}
}

// TestTierTable is the help-desk model through a real relay: for each
// tier, what it may do and what it is refused (codes.PermissionDenied,
// audited). Allowed calls may still fail for other reasons (the devices
// are offline, a device needs its user's consent), never for the tier.
//
//	tier 1: diagnostics, the fleet, view-only sessions with consent
//	tier 2: + desktop control, actions, commands on one device
//	tier 3: + commands on many devices, unattended sessions, reports
//	admin:  + technicians, policy, settings, enrollment, the audit log
func TestTierTable(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	admin := signIn(t, r, "admin", servertest.AdminPassword)
	unattended := r.Enroll(t, "tt-unattended").DeviceID
	attended := r.Enroll(t, "tt-attended").DeviceID
	if _, err := admin.cs.SetDevicePolicy(admin.ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: unattended, UnattendedAllowed: true}); err != nil {
		t.Fatal(err)
	}
	reports := desksidev1.NewReportServiceClient(r.Dial(t))
	session := func(id string, control bool) func(c techClients) error {
		return func(c techClients) error {
			st, err := c.cs.StartDesktopSession(c.ctx, &desksidev1.StartDesktopSessionRequest{DeviceId: id, Control: control})
			if err == nil {
				_, err = st.Recv()
			}
			return err
		}
	}
	command := func(req *desksidev1.RunCommandRequest) func(c techClients) error {
		return func(c techClients) error {
			req.Command = &desksidev1.RunCommand{Command: "true"}
			st, err := c.cs.RunCommand(c.ctx, req)
			if err == nil {
				_, err = st.Recv()
			}
			return err
		}
	}
	ops := []struct {
		name string
		call func(c techClients) error
	}{
		{"fleet", func(c techClients) error {
			_, err := c.cs.ListDevices(c.ctx, &desksidev1.ListDevicesRequest{})
			return err
		}},
		{"diagnostics", func(c techClients) error {
			_, err := c.cs.RunChecks(c.ctx, &desksidev1.RunChecksRequest{DeviceId: attended})
			return err
		}},
		{"view with consent", session(attended, false)},
		{"control with consent", session(attended, true)},
		{"action", func(c techClients) error {
			_, err := c.cs.RunAction(c.ctx, &desksidev1.RunActionRequest{DeviceId: attended, Action: &desksidev1.RunAction{Action: &desksidev1.RunAction_FlushDns{FlushDns: &desksidev1.FlushDns{}}}})
			return err
		}},
		{"command", command(&desksidev1.RunCommandRequest{DeviceId: attended})},
		{"command on many devices", command(&desksidev1.RunCommandRequest{Filter: &desksidev1.ListDevicesRequest{Hostname: "tt-"}})},
		{"unattended view", session(unattended, false)},
		{"unattended control", session(unattended, true)},
		{"own password", func(c techClients) error {
			_, err := c.ts.ChangePassword(c.ctx, &desksidev1.ChangePasswordRequest{CurrentPassword: "x", NewPassword: "short"})
			return err
		}},
		{"technicians", func(c techClients) error {
			_, err := c.ts.ListTechnicians(c.ctx, &desksidev1.ListTechniciansRequest{})
			return err
		}},
		{"device policy", func(c techClients) error {
			_, err := c.cs.SetDevicePolicy(c.ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: attended})
			return err
		}},
		{"group settings", func(c techClients) error {
			_, err := c.cs.SetGroupCheckConfig(c.ctx, &desksidev1.SetGroupCheckConfigRequest{Group: "lab"})
			return err
		}},
		{"enrollment", func(c techClients) error {
			_, err := c.cs.CreateEnrollmentToken(c.ctx, &desksidev1.CreateEnrollmentTokenRequest{})
			return err
		}},
		{"audit log", func(c techClients) error {
			_, err := c.cs.ListAuditEvents(c.ctx, &desksidev1.ListAuditEventsRequest{})
			return err
		}},
		{"reports", func(c techClients) error {
			now := time.Now()
			_, err := reports.GetReport(c.ctx, &desksidev1.GetReportRequest{From: timestamppb.New(now.Add(-24 * time.Hour)), To: timestamppb.New(now)})
			return err
		}},
	}
	tier1 := []string{"fleet", "diagnostics", "view with consent", "own password"}
	tier2 := append([]string{"control with consent", "action", "command"}, tier1...)
	tier3 := append([]string{"command on many devices", "unattended view", "unattended control", "reports"}, tier2...)
	for _, c := range []struct {
		role    desksidev1.Role
		allowed []string // nil: everything
	}{
		{desksidev1.Role_ROLE_TIER1, tier1},
		{desksidev1.Role_ROLE_TIER2, tier2},
		{desksidev1.Role_ROLE_TIER3, tier3},
		{desksidev1.Role_ROLE_ADMIN, nil},
	} {
		t.Run(c.role.String(), func(t *testing.T) {
			name := strings.ToLower(strings.TrimPrefix(c.role.String(), "ROLE_")) + "-tech"
			const pw = "tier table password"
			addTechTo(t, r, name, pw, c.role)
			tc := signIn(t, r, name, pw)
			for _, op := range ops {
				allowed := c.allowed == nil || slices.Contains(c.allowed, op.name)
				err := op.call(tc)
				if refused := status.Code(err) == codes.PermissionDenied; refused == allowed {
					t.Errorf("%s %s: %v; want allowed %v", name, op.name, err, allowed)
				}
			}
			evs, err := r.Srv.Store().ListAudit(t.Context(), store.AuditFilter{Actor: name, Action: "access.denied"})
			if err != nil {
				t.Fatal(err)
			}
			if want := len(ops) - len(c.allowed); c.allowed != nil && len(evs) != want {
				t.Errorf("%s: %d refusals audited, want %d", name, len(evs), want)
			}
		})
	}
}
