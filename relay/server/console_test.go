package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/store"
)

// Every RPC of every Deskside service has an explicit authorization rule.
func TestEveryRPCHasARule(t *testing.T) {
	n := 0
	protoregistry.GlobalFiles.RangeFilesByPackage("deskside.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				m := "/" + string(sd.FullName()) + "/" + string(sd.Methods().Get(j).Name())
				n++
				if _, ok := server.Rules[m]; !ok {
					t.Errorf("%s has no authorization rule in server.Rules", m)
				}
			}
		}
		return true
	})
	if n < 10 {
		t.Fatalf("found only %d methods; is the registry populated?", n)
	}
}

func addTech(t *testing.T, r *relay, name, pw string, role desksidev1.Role) {
	t.Helper()
	h, err := auth.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Store().CreateTechnician(context.Background(), store.Technician{Name: name, PasswordHash: h, Role: int(role), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func TestRolesAndAudit(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	addTech(t, r, "tier1", "tier-one-password", desksidev1.Role_ROLE_TIER1)
	cs, ctx := r.console(t, "tier1", "tier-one-password")
	if _, err := cs.ListDevices(ctx, &desksidev1.ListDevicesRequest{}); err != nil {
		t.Fatalf("tier1 list devices: %v", err)
	}
	for name, call := range map[string]func() error{
		"token create": func() error {
			_, err := cs.CreateEnrollmentToken(ctx, &desksidev1.CreateEnrollmentTokenRequest{})
			return err
		},
		"revoke": func() error { _, err := cs.RevokeDevice(ctx, &desksidev1.RevokeDeviceRequest{Id: "x"}); return err },
		"audit":  func() error { _, err := cs.ListAuditEvents(ctx, &desksidev1.ListAuditEventsRequest{}); return err },
		"audit verify": func() error {
			st, err := cs.VerifyAuditLog(ctx, &desksidev1.VerifyAuditLogRequest{})
			if err == nil {
				_, err = st.Recv()
			}
			return err
		},
	} {
		err := call()
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "needs role admin; you are tier1") {
			t.Errorf("tier1 %s: %v", name, err)
		}
	}
	// Unauthenticated calls.
	anon := desksidev1.NewConsoleServiceClient(r.dial(t, nil))
	if _, err := anon.ListDevices(context.Background(), &desksidev1.ListDevicesRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("anonymous list: %v", err)
	}
	bogus := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer dss_bogus")
	if _, err := anon.ListDevices(bogus, &desksidev1.ListDevicesRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("bogus token: %v", err)
	}
	// Refusals are audited, and the chain verifies (the keyed chain from
	// its anchor, the first record of a new relay).
	evs, err := r.srv.Store().ListAudit(context.Background(), store.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for i, e := range evs {
		if e.Action == "access.denied" && e.Actor == "tier1" {
			denied++
		}
		if store.AuditHash(e.PrevHash, e) == e.Hash {
			t.Errorf("audit event %d is sealed with the unkeyed hash", e.Seq)
		}
		if i+1 < len(evs) && evs[i+1].Hash != e.PrevHash {
			t.Errorf("audit chain broken at %d", e.Seq)
		}
	}
	if denied != 4 {
		t.Errorf("%d access.denied events, want 4", denied)
	}
	if first := evs[len(evs)-1]; first.Seq != 1 || first.Action != "audit.rekeyed" {
		t.Errorf("first audit event %+v, want the key's anchor", first)
	}
	acs, actx := r.console(t, "admin", adminPassword)
	vs, err := acs.VerifyAuditLog(actx, &desksidev1.VerifyAuditLogRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := vs.Recv()
		if err != nil {
			t.Fatalf("VerifyAuditLog: %v", err)
		}
		if m.GetDone() {
			if m.GetProblem() != nil || m.GetChecked() < int64(len(evs)) || m.GetAnchor() != 1 || m.GetUnkeyed() != 0 {
				t.Errorf("VerifyAuditLog = %v, want every one of %d records verified", m, len(evs))
			}
			break
		}
	}
	// Logout ends the session.
	if _, err := cs.Logout(ctx, &desksidev1.LogoutRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.WhoAmI(ctx, &desksidev1.WhoAmIRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("after logout: %v", err)
	}
}

func TestLoginLockoutAndExpiry(t *testing.T) {
	var clk clock
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", func(c *server.Config) { c.Now = clk.Now })
	cs := desksidev1.NewConsoleServiceClient(r.dial(t, nil))
	ctx := context.Background()
	for i := range auth.MaxFailures {
		_, err := cs.Login(ctx, &desksidev1.LoginRequest{Name: "admin", Password: "wrong-password-" + string(rune('a'+i))})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("wrong password %d: %v", i, err)
		}
	}
	// The right password while locked gets the answer of a wrong one.
	_, err := cs.Login(ctx, &desksidev1.LoginRequest{Name: "admin", Password: adminPassword})
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "wrong name, password or TOTP code") {
		t.Fatalf("right password while locked: %v", err)
	}
	clk.Advance(auth.LockoutPeriod + time.Second)
	resp, err := cs.Login(ctx, &desksidev1.LoginRequest{Name: "admin", Password: adminPassword})
	if err != nil {
		t.Fatalf("after lockout: %v", err)
	}
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+resp.GetToken())
	if _, err := cs.WhoAmI(actx, &desksidev1.WhoAmIRequest{}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(auth.SessionTTL + time.Second)
	if _, err := cs.WhoAmI(actx, &desksidev1.WhoAmIRequest{}); status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired session: %v", err)
	}
	// Unknown names get the same answer as wrong passwords.
	if _, err := cs.Login(ctx, &desksidev1.LoginRequest{Name: "nobody", Password: "x"}); status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "wrong name, password or TOTP code") {
		t.Fatalf("unknown name: %v", err)
	}
}

func TestListDevicesFiltersAndPaging(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	ctx := context.Background()
	for i, h := range []string{"alpha", "bravo", "charlie", "delta", "echo"} {
		if err := r.srv.Store().CreateDevice(ctx, store.Device{ID: "dev-" + h, Hostname: h, OS: []string{"linux", "windows"}[i%2], FirstSeen: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	cs, actx := r.admin(t)
	var all []string
	tok := ""
	for {
		resp, err := cs.ListDevices(actx, &desksidev1.ListDevicesRequest{PageSize: 2, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetTotal() != 5 {
			t.Fatalf("total %d", resp.GetTotal())
		}
		for _, d := range resp.GetDevices() {
			all = append(all, d.GetHostname())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if strings.Join(all, ",") != "alpha,bravo,charlie,delta,echo" {
		t.Fatalf("paged %v", all)
	}
	resp, err := cs.ListDevices(actx, &desksidev1.ListDevicesRequest{Os: "WIN"})
	if err != nil || len(resp.GetDevices()) != 2 {
		t.Fatalf("os filter: %v %v", resp, err)
	}
	if _, err := cs.ListDevices(actx, &desksidev1.ListDevicesRequest{PageToken: "!!"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad page token: %v", err)
	}
}

func TestListDevicesSortedPagingAndFilters(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	ctx := context.Background()
	mem := map[string]uint64{"a": 4 << 30, "b": 16 << 30, "c": 8 << 30, "d": 32 << 30, "e": 2 << 30}
	for h, m := range mem {
		if err := r.srv.Store().CreateDevice(ctx, store.Device{ID: "dev-" + h, Hostname: h, FirstSeen: time.Now(),
			DeviceSummary: store.DeviceSummary{MemoryBytes: m}}); err != nil {
			t.Fatal(err)
		}
		if err := r.srv.Store().PutInventory(ctx, store.Inventory{DeviceID: "dev-" + h, CollectedAt: time.Now(), ReceivedAt: time.Now(), Data: []byte{}},
			store.DeviceSummary{MemoryBytes: m, DiskTotalBytes: 100, DiskFreeBytes: uint64(len(h) * 5), DiskUsedBytes: 100 - uint64(len(h)*5)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	cs, actx := r.admin(t)
	var got []string
	tok := ""
	for {
		resp, err := cs.ListDevices(actx, &desksidev1.ListDevicesRequest{PageSize: 2, PageToken: tok,
			Sort: desksidev1.DeviceSort_DEVICE_SORT_MEMORY, Descending: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range resp.GetDevices() {
			got = append(got, d.GetHostname())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if strings.Join(got, "") != "dbcae" {
		t.Fatalf("memory descending pages: %v", got)
	}
	resp, err := cs.ListDevices(actx, &desksidev1.ListDevicesRequest{MemoryBelowBytes: 8 << 30})
	if err != nil || resp.GetTotal() != 2 {
		t.Fatalf("RAM < 8 GiB: %v %v", resp, err)
	}
	resp, err = cs.ListDevices(actx, &desksidev1.ListDevicesRequest{DiskFreeBelowPercent: 10})
	if err != nil || resp.GetTotal() != 5 {
		t.Fatalf("disk free < 10%%: %v %v", resp, err)
	}
	if _, err := cs.ListDevices(actx, &desksidev1.ListDevicesRequest{DiskFreeBelowPercent: 101}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad percentage: %v", err)
	}
}
