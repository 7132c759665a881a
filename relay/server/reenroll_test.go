package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/deskside/deskside/agent/enroll"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
)

// TestReenrollKeepsOneDevice enrolls the same machine twice (two state
// directories, one machine id, as after reinstalling the agent): there is
// one device, with its id, group and policy; the new certificate connects,
// the old one no longer does, and the audit log says so.
func TestReenrollKeepsOneDevice(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	machine := servertest.NewMachineID()
	enrollAs := func(hostname string) *enroll.State { return enrollMachine(t, r, machine, hostname) }
	first := enrollAs("vm")
	cs, ctx := r.admin(t)
	if _, err := cs.SetDeviceGroup(ctx, &desksidev1.SetDeviceGroupRequest{DeviceId: first.DeviceID, Group: "lab"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.SetDevicePolicy(ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: first.DeviceID, UnattendedAllowed: true}); err != nil {
		t.Fatal(err)
	}
	if err := connectOnce(t, r, &first.Cert, wire.ProtocolVersion); err != nil {
		t.Fatalf("first certificate: %v", err)
	}
	// The old agent is gone (the machine was reinstalled).
	waitOffline(t, r, first.DeviceID)

	second := enrollAs("vm-reinstalled")
	if second.DeviceID != first.DeviceID {
		t.Fatalf("re-enrollment made device %s, want the machine's %s", second.DeviceID, first.DeviceID)
	}
	list, err := cs.ListDevices(ctx, &desksidev1.ListDevicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetDevices()) != 1 || list.GetTotal() != 1 {
		t.Fatalf("%d devices after enrolling one machine twice, want 1", len(list.GetDevices()))
	}
	d := list.GetDevices()[0]
	if d.GetHostname() != "vm-reinstalled" || d.GetGroup() != "lab" || d.GetUnattendedAllowed() {
		t.Errorf("re-enrolled device %v: want the new hostname, group lab kept, unattended access off", d)
	}
	if err := connectOnce(t, r, &second.Cert, wire.ProtocolVersion); err != nil {
		t.Errorf("new certificate: %v", err)
	}
	if err := connectOnce(t, r, &first.Cert, wire.ProtocolVersion); status.Code(err) != codes.PermissionDenied {
		t.Errorf("old certificate after re-enrollment: %v, want PermissionDenied", err)
	}
	audit, err := cs.ListAuditEvents(ctx, &desksidev1.ListAuditEventsRequest{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range audit.GetEvents() {
		found = found || (e.GetAction() == "device.reenrolled" && e.GetTarget() == first.DeviceID)
	}
	if !found {
		t.Errorf("no device.reenrolled audit event for %s", first.DeviceID)
	}

	// Another machine is another device.
	other, err := enroll.Enroll(context.Background(), enroll.Options{
		Relay: r.addr, Token: r.token(t, time.Hour, 1), StateDir: t.TempDir(), Hostname: "vm", Version: "test", MachineID: servertest.NewMachineID(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if other.DeviceID == first.DeviceID {
		t.Errorf("another machine got the same device")
	}
}

// enrollMachine enrolls as the machine with that id, from a new state
// directory (as after reinstalling the agent).
func enrollMachine(t *testing.T, r *relay, machine, hostname string) *enroll.State {
	t.Helper()
	st, err := enroll.Enroll(context.Background(), enroll.Options{
		Relay: r.addr, Token: r.token(t, time.Hour, 1), StateDir: t.TempDir(), Hostname: hostname, Version: "test", MachineID: machine,
	})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	return st
}

// waitOffline waits until the relay has recorded the device offline.
func waitOffline(t *testing.T, r *relay, id string) {
	t.Helper()
	cs, ctx := r.admin(t)
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: id})
		if err != nil {
			return err
		}
		if d.GetDevice().GetOnline() {
			return errNotYet
		}
		return nil
	})
}

// TestReenrollOnlineMachineIDIsANewDevice: a machine id is the agent's
// word, not a proof (local users can read /etc/machine-id; cloned images
// share it). Enrolling with the id of a device that is online makes a new
// device and leaves the online one, its certificate and its policy alone.
func TestReenrollOnlineMachineIDIsANewDevice(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	machine := servertest.NewMachineID()
	enrollAs := func(hostname string) *enroll.State { return enrollMachine(t, r, machine, hostname) }
	victim := enrollAs("victim")
	cs, ctx := r.admin(t)
	if _, err := cs.SetDevicePolicy(ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: victim.DeviceID, UnattendedAllowed: true}); err != nil {
		t.Fatal(err)
	}
	runAgent(t, victim, agentOpts{})
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: victim.DeviceID})
		if err != nil || !d.GetDevice().GetOnline() {
			return errNotYet
		}
		return nil
	})

	intruder := enrollAs("intruder")
	if intruder.DeviceID == victim.DeviceID {
		t.Fatalf("an enrollment naming an online device's machine id took the device over")
	}
	d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: victim.DeviceID})
	if err != nil {
		t.Fatal(err)
	}
	if d.GetDevice().GetHostname() == "intruder" || !d.GetDevice().GetUnattendedAllowed() || !d.GetDevice().GetOnline() {
		t.Errorf("online device after the conflicting enrollment: %v; want it untouched and online", d.GetDevice())
	}
	if err := connectOnce(t, r, &victim.Cert, wire.ProtocolVersion); err != nil {
		t.Errorf("the online device's certificate after the conflicting enrollment: %v", err)
	}
	audit, err := cs.ListAuditEvents(ctx, &desksidev1.ListAuditEventsRequest{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range audit.GetEvents() {
		found = found || (e.GetAction() == "device.machine_id_conflict" && e.GetTarget() == victim.DeviceID)
	}
	if !found {
		t.Errorf("no device.machine_id_conflict audit event for %s", victim.DeviceID)
	}
}

// TestEnrollRefusesHostileMachineID: a machine id that is too long or has
// characters outside [A-Za-z0-9._-] is refused before the token is used.
func TestEnrollRefusesHostileMachineID(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	tok := r.token(t, time.Hour, 1)
	for _, id := range []string{string(make([]byte, 129)), "abc/../def", "id with space", "ünïcode", "a\x00b"} {
		_, err := enroll.Enroll(context.Background(), enroll.Options{
			Relay: r.addr, Token: tok, StateDir: t.TempDir(), Hostname: "h", Version: "test", MachineID: id,
		})
		if err == nil || !strings.Contains(err.Error(), "machine_id") {
			t.Errorf("machine id %q: %v, want refused", id, err)
		}
	}
	// The token was not used by the refusals.
	if _, err := r.enroll(t, tok); err != nil {
		t.Errorf("token after refusals: %v", err)
	}
}

func TestOSDisplayName(t *testing.T) {
	for _, tc := range []struct{ name, version, want string }{
		{"Debian GNU/Linux", "12.11", "Debian 12.11"},
		{"Ubuntu", "24.04", "Ubuntu 24.04"},
		{"Fedora Linux", "40", "Fedora 40"},
		{"Arch Linux", "", "Arch Linux"},
		{"Linux Mint", "22", "Linux Mint 22"},
		{"macOS", "15.1", "macOS 15.1"},
		{"Microsoft Windows 11 Pro", "10.0.26100.2314", "Windows 11 Pro"},
		{"", "1.0", ""},
	} {
		if got := server.OSDisplayName(tc.name, tc.version); got != tc.want {
			t.Errorf("OSDisplayName(%q, %q) = %q, want %q", tc.name, tc.version, got, tc.want)
		}
	}
}

// TestStoreErrorIsUnavailable: a console call whose store fails gets
// Unavailable naming the store (the relay keeps running).
func TestStoreErrorIsUnavailable(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	cs, ctx := r.admin(t)
	r.srv.Store().Close()
	_, err := cs.ListAuditEvents(ctx, &desksidev1.ListAuditEventsRequest{})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "relay store") {
		t.Errorf("ListAuditEvents on a closed store: %v, want Unavailable from the relay store", err)
	}
}
