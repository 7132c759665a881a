package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
)

// addScopedTech creates a technician of role working in groups.
func addScopedTech(t *testing.T, r *servertest.Relay, name, pw string, role desksidev1.Role, groups []string) techClients {
	t.Helper()
	h, err := auth.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Srv.Store().CreateTechnician(t.Context(), store.Technician{
		Name: name, PasswordHash: h, Role: int(role), Groups: groups, CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	return signIn(t, r, name, pw)
}

// listIDs lists the devices c sees among those whose hostname has the
// prefix gs-, sorted by hostname, and the total the relay reports.
func listIDs(t *testing.T, c techClients) ([]string, int64) {
	t.Helper()
	resp, err := c.cs.ListDevices(c.ctx, &desksidev1.ListDevicesRequest{Hostname: "gs-"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range resp.GetDevices() {
		ids = append(ids, d.GetId())
	}
	return ids, resp.GetTotal()
}

// watchDevices watches devices as c; the channel closes when the watch
// ends.
func watchDevices(t *testing.T, c techClients) <-chan *desksidev1.Device {
	t.Helper()
	ctx, cancel := context.WithCancel(c.ctx)
	t.Cleanup(cancel)
	w, err := c.cs.WatchDevices(ctx, &desksidev1.WatchDevicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil { // the watch is live
		t.Fatal(err)
	}
	ch := make(chan *desksidev1.Device, 256)
	go func() {
		defer close(ch)
		for {
			m, err := w.Recv()
			if err != nil {
				return
			}
			ch <- m.GetDevice()
		}
	}()
	return ch
}

// TestDeviceGroupScope runs a technician whose account names device
// groups through a real relay: they see, watch, resolve and fan out to
// devices of their groups only, and a device outside them answers exactly
// like a missing one; admins and technicians without groups see every
// device.
func TestDeviceGroupScope(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	_, front := diagAgent(t, r, "gs-front")
	_, lab := diagAgent(t, r, "gs-lab")
	none := r.Enroll(t, "gs-none").DeviceID
	admin := signIn(t, r, "admin", servertest.AdminPassword)
	for id, g := range map[string]string{front: " front-desk ", lab: "lab"} { // trimmed like account groups
		if _, err := admin.cs.SetDeviceGroup(admin.ctx, &desksidev1.SetDeviceGroupRequest{DeviceId: id, Group: g}); err != nil {
			t.Fatal(err)
		}
	}
	const pw = "group scope password"
	scoped := addScopedTech(t, r, "scoped", pw, desksidev1.Role_ROLE_TIER2, []string{"front-desk"})
	wide := addScopedTech(t, r, "wide", pw, desksidev1.Role_ROLE_TIER2, nil)
	// An admin with groups still sees everything.
	groupAdmin := addScopedTech(t, r, "group-admin", pw, desksidev1.Role_ROLE_ADMIN, []string{"front-desk"})

	all := []string{front, lab, none} // by hostname: gs-front, gs-lab, gs-none
	for name, c := range map[string]techClients{"admin": admin, "wide": wide, "group-admin": groupAdmin} {
		if ids, total := listIDs(t, c); !slices.Equal(ids, all) || total != 3 {
			t.Errorf("%s lists %v (total %d), want %v (3)", name, ids, total, all)
		}
		if _, err := c.cs.GetDevice(c.ctx, &desksidev1.GetDeviceRequest{Id: lab}); err != nil {
			t.Errorf("%s GetDevice(lab): %v", name, err)
		}
	}

	if ids, total := listIDs(t, scoped); !slices.Equal(ids, []string{front}) || total != 1 {
		t.Errorf("scoped lists %v (total %d), want only the front-desk device %s", ids, total, front)
	}
	resp, err := scoped.cs.ListDevices(scoped.ctx, &desksidev1.ListDevicesRequest{Query: lab})
	if err != nil || len(resp.GetDevices()) != 0 || resp.GetTotal() != 0 {
		t.Errorf("scoped searching for the lab device's id: %v, %v", resp, err)
	}

	// Outside the scope is exactly missing: same code, same message.
	notFound := func(id string) string { return fmt.Sprintf("no device %q (see `deskside devices list`)", id) }
	_, missingErr := scoped.cs.GetDevice(scoped.ctx, &desksidev1.GetDeviceRequest{Id: "no-such-device"})
	if st := status.Convert(missingErr); st.Code() != codes.NotFound || st.Message() != notFound("no-such-device") {
		t.Fatalf("GetDevice(missing) = %v", missingErr)
	}
	refused := map[string]func(id string) error{
		"GetDevice": func(id string) error {
			_, err := scoped.cs.GetDevice(scoped.ctx, &desksidev1.GetDeviceRequest{Id: id})
			return err
		},
		"GetInventoryHistory": func(id string) error {
			_, err := scoped.cs.GetInventoryHistory(scoped.ctx, &desksidev1.GetInventoryHistoryRequest{Id: id})
			return err
		},
		"GetHealthHistory": func(id string) error {
			_, err := scoped.cs.GetHealthHistory(scoped.ctx, &desksidev1.GetHealthHistoryRequest{Id: id})
			return err
		},
		"RunChecks": func(id string) error {
			_, err := scoped.cs.RunChecks(scoped.ctx, &desksidev1.RunChecksRequest{DeviceId: id})
			return err
		},
		"ListCheckReports": func(id string) error {
			_, err := scoped.cs.ListCheckReports(scoped.ctx, &desksidev1.ListCheckReportsRequest{DeviceId: id})
			return err
		},
		"RunAction": func(id string) error {
			_, err := scoped.cs.RunAction(scoped.ctx, &desksidev1.RunActionRequest{DeviceId: id,
				Action: &desksidev1.RunAction{Action: &desksidev1.RunAction_FlushDns{FlushDns: &desksidev1.FlushDns{}}}})
			return err
		},
		"RunCommand": func(id string) error {
			_, err := runCmd(scoped.ctx, scoped.cs, &desksidev1.RunCommandRequest{DeviceId: id, Command: shell("echo hi")}, nil)
			return err
		},
		"PingDevice": func(id string) error {
			_, err := scoped.cs.PingDevice(scoped.ctx, &desksidev1.PingDeviceRequest{Id: id})
			return err
		},
		"RefreshInventory": func(id string) error {
			_, err := scoped.cs.RefreshInventory(scoped.ctx, &desksidev1.RefreshInventoryRequest{Id: id})
			return err
		},
		"StartDesktopSession": func(id string) error {
			st, err := scoped.cs.StartDesktopSession(scoped.ctx, &desksidev1.StartDesktopSessionRequest{DeviceId: id})
			if err == nil {
				_, err = st.Recv()
			}
			return err
		},
	}
	for name, call := range refused {
		for _, id := range []string{lab, none} {
			if st := status.Convert(call(id)); st.Code() != codes.NotFound || st.Message() != notFound(id) {
				t.Errorf("scoped %s(%s) = %v; want NotFound %q", name, id, st.Err(), notFound(id))
			}
		}
	}
	// The same calls reach the technician's own device.
	if _, err := scoped.cs.GetDevice(scoped.ctx, &desksidev1.GetDeviceRequest{Id: front}); err != nil {
		t.Errorf("scoped GetDevice(front): %v", err)
	}
	// (PingDevice, not RunChecks: real checks take seconds.)
	if _, err := scoped.cs.PingDevice(scoped.ctx, &desksidev1.PingDeviceRequest{Id: front}); err != nil {
		t.Errorf("scoped PingDevice(front): %v", err)
	}
	if res, err := runCmd(scoped.ctx, scoped.cs, &desksidev1.RunCommandRequest{DeviceId: front, Command: shell("echo hi")}, nil); err != nil || res.stdout != "hi\n" {
		t.Errorf("scoped RunCommand(front): %v, %+v", err, res)
	}
	if _, err := admin.cs.PingDevice(admin.ctx, &desksidev1.PingDeviceRequest{Id: lab}); err != nil {
		t.Errorf("admin PingDevice(lab): %v", err)
	}

	// A filter fan-out reaches only the technician's groups (one device,
	// so tier 2 may run it); the same filter reaches both agents for an
	// admin.
	res, err := runCmd(scoped.ctx, scoped.cs, &desksidev1.RunCommandRequest{Filter: &desksidev1.ListDevicesRequest{Hostname: "gs-"}, Command: shell("echo hi")}, nil)
	if err != nil {
		t.Fatalf("scoped fan-out: %v", err)
	}
	if res.summary.GetDevices() != 1 || len(res.exits) != 1 || res.exits[front] == nil || len(res.offline) != 0 {
		t.Errorf("scoped fan-out: summary %v, exits %v, offline %v; want only %s", res.summary, res.exits, res.offline, front)
	}
	res, err = runCmd(admin.ctx, admin.cs, &desksidev1.RunCommandRequest{Filter: &desksidev1.ListDevicesRequest{Hostname: "gs-"}, Command: shell("echo hi")}, nil)
	if err != nil {
		t.Fatalf("admin fan-out: %v", err)
	}
	if res.summary.GetDevices() != 3 || res.exits[front] == nil || res.exits[lab] == nil {
		t.Errorf("admin fan-out: summary %v, exits %v; want all three devices", res.summary, res.exits)
	}
	// A filter that matches only devices outside the scope matches none.
	_, err = runCmd(scoped.ctx, scoped.cs, &desksidev1.RunCommandRequest{Filter: &desksidev1.ListDevicesRequest{Hostname: "gs-lab"}, Command: shell("echo hi")}, nil)
	if status.Code(err) != codes.NotFound {
		t.Errorf("scoped fan-out to the lab only: %v; want NotFound", err)
	}

	// The inventory export holds only the technician's devices.
	exp, err := scoped.cs.ExportInventory(scoped.ctx, &desksidev1.ExportInventoryRequest{Filter: &desksidev1.ListDevicesRequest{Hostname: "gs-"}})
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for {
		m, err := exp.Recv()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		exported = append(exported, m.GetDevice().GetId())
	}
	if !slices.Equal(exported, []string{front}) {
		t.Errorf("scoped export = %v, want [%s]", exported, front)
	}

	// A ticket for a device outside the scope is refused like one for a
	// missing device; for the technician's own device it is filed.
	tickets := desksidev1.NewTicketServiceClient(r.Dial(t))
	fileFor := func(id string) error {
		_, err := tickets.CreateTicket(scoped.ctx, &desksidev1.CreateTicketRequest{Subject: "Printer jam",
			Requester: &desksidev1.TicketRequester{Name: "Ada", DeviceId: id}})
		return err
	}
	missing := status.Convert(fileFor("no-such-device"))
	want := strings.ReplaceAll(missing.Message(), "no-such-device", lab)
	if st := status.Convert(fileFor(lab)); missing.Code() != codes.NotFound || st.Code() != codes.NotFound || st.Message() != want {
		t.Errorf("scoped ticket for the lab device: %v; want as for a missing device (%v)", st.Err(), missing.Err())
	}
	if err := fileFor(front); err != nil {
		t.Errorf("scoped ticket for the front-desk device: %v", err)
	}

	// Refusals are audited, with the device, for admins to read.
	evs, err := r.Srv.Store().ListAudit(t.Context(), store.AuditFilter{Actor: "scoped", Action: "access.denied", Target: lab})
	if err != nil {
		t.Fatal(err)
	}
	if refreshed, err := r.Srv.Store().ListAudit(t.Context(), store.AuditFilter{Actor: "scoped", Action: "inventory.refresh", Target: lab}); err != nil || len(refreshed) != 0 {
		t.Errorf("the refused refresh of the lab device is audited as a refresh: %v %v", refreshed, err)
	}
	if len(evs) < len(refused)+1 { // and the ticket
		t.Errorf("%d refusals of the lab device audited, want at least %d", len(evs), len(refused)+1)
	}

	// WatchDevices delivers only the technician's devices. Changes to the
	// lab device and the device without a group come first, then one to
	// the front-desk device: the scoped watch's first event about a policy
	// change is the front-desk one.
	scopedWatch := watchDevices(t, scoped)
	adminWatch := watchDevices(t, admin)
	for _, id := range []string{lab, none, front} {
		if _, err := admin.cs.SetDevicePolicy(admin.ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: id, MaxSessions: 7}); err != nil {
			t.Fatal(err)
		}
	}
	// seen reads ch up to the policy change of front: the ids of the
	// policy changes and of every event.
	seen := func(ch <-chan *desksidev1.Device, who string) (policy, every []string) {
		timeout := time.After(10 * time.Second)
		for {
			select {
			case d, ok := <-ch:
				if !ok {
					t.Fatalf("%s watch ended", who)
				}
				every = append(every, d.GetId())
				if d.GetMaxSessions() != 7 {
					continue // an earlier change (an agent's inventory)
				}
				policy = append(policy, d.GetId())
				if d.GetId() == front {
					return policy, every
				}
			case <-timeout:
				t.Fatalf("%s watch: no event for %s in 10s (saw %v)", who, front, every)
			}
		}
	}
	if got, every := seen(scopedWatch, "scoped"); !slices.Equal(got, []string{front}) || slices.ContainsFunc(every, func(id string) bool { return id != front }) {
		t.Errorf("scoped watch delivered %v (policy changes %v), want only %s", every, got, front)
	}
	if got, _ := seen(adminWatch, "admin"); !slices.Equal(got, []string{lab, none, front}) {
		t.Errorf("admin watch delivered %v, want %v", got, []string{lab, none, front})
	}
}
