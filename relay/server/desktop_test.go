package server_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

func startSession(ctx context.Context, cs desksidev1.ConsoleServiceClient, id string) error {
	st, err := cs.StartDesktopSession(ctx, &desksidev1.StartDesktopSessionRequest{DeviceId: id, Control: true})
	if err != nil {
		return err
	}
	_, err = st.Recv()
	return err
}

// Control sessions need tier 2, and a device policy that allows them;
// refusals are audited and say what to do (TestTierTable has the rest).
func TestDesktopSessionRefusals(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	st := r.Enroll(t, "desk")
	addTechTo(t, r, "t1", "tier-one-password", desksidev1.Role_ROLE_TIER1)
	c1, ctx1 := r.Console(t, "t1", "tier-one-password")
	err := startSession(ctx1, c1, st.DeviceID)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "desktop control needs role tier2; you are tier1") {
		t.Fatalf("tier-1 session: %v", err)
	}
	auditHas(t, r, "t1", "access.denied", st.DeviceID)

	admin, actx := r.Admin(t)
	// A viewer fingerprint must be what SDP names ("sha-256 AB:CD:…").
	bad, err := admin.StartDesktopSession(actx, &desksidev1.StartDesktopSessionRequest{DeviceId: st.DeviceID, ViewerFingerprint: "sha-256 " + strings.Repeat("AB", 32)})
	if err == nil {
		_, err = bad.Recv()
	}
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "viewer_fingerprint") || !strings.Contains(err.Error(), "update the console") {
		t.Fatalf("malformed viewer fingerprint: %v", err)
	}
	// A ticket the session names must exist.
	bad, err = admin.StartDesktopSession(actx, &desksidev1.StartDesktopSessionRequest{DeviceId: st.DeviceID, TicketCode: "DS-999999"})
	if err == nil {
		_, err = bad.Recv()
	}
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "no ticket DS-999999") {
		t.Fatalf("unknown ticket: %v", err)
	}

	if _, err := admin.SetDevicePolicy(actx, &desksidev1.SetDevicePolicyRequest{DeviceId: st.DeviceID, UnattendedAllowed: true}); err != nil {
		t.Fatal(err)
	}
	// Allowed now: the session starts (with TURN credentials), then
	// reports the agent offline.
	stream, err := admin.StartDesktopSession(actx, &desksidev1.StartDesktopSessionRequest{DeviceId: st.DeviceID})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	ice := first.GetStarted().GetIceServers()
	if len(ice) != 1 || !strings.HasPrefix(ice[0].GetUrls()[0], "turn:127.0.0.1:") || ice[0].GetUsername() == "" {
		t.Fatalf("ICE servers %v", ice)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "offline") {
		t.Fatalf("offline device: %v", err)
	}
	// The session is over, so are its TURN credentials (not only after
	// their lifetime).
	if code := turnAllocate(t, ice[0]); code != int(stun.CodeUnauthorized) {
		t.Errorf("TURN allocation with an ended session's credentials: code %d, want 401", code)
	}
}

// turnAllocate asks the TURN server of ice (its UDP URL) for an allocation
// and returns the STUN error code of the answer (0: allocated).
func turnAllocate(t *testing.T, ice *desksidev1.IceServer) int {
	t.Helper()
	addr := strings.TrimSuffix(strings.TrimPrefix(ice.GetUrls()[0], "turn:"), "?transport=udp")
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, Conn: conn, Username: ice.GetUsername(),
		Password: ice.GetCredential(), Realm: "deskside", RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relayed, err := c.Allocate()
	if err == nil {
		relayed.Close()
		return 0
	}
	var te *stun.TurnError
	if !errors.As(err, &te) {
		t.Fatalf("TURN allocation: %v", err)
	}
	return int(te.ErrorCodeAttr.Code)
}

// The remote-access mode: a device's own, else its group's, else
// attended; attended sessions are for tier 1 (view) and 2 (control), the
// unattended modes for tier 3.
func TestDesktopPolicyModes(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	dev := r.Enroll(t, "modes").DeviceID
	addTechTo(t, r, "t2", "tier-two-password", desksidev1.Role_ROLE_TIER2)
	c2, ctx2 := r.Console(t, "t2", "tier-two-password")
	admin, actx := r.Admin(t)
	mode := func() (desksidev1.DesktopPolicyMode, bool) {
		t.Helper()
		d, err := admin.GetDevice(actx, &desksidev1.GetDeviceRequest{Id: dev})
		if err != nil {
			t.Fatal(err)
		}
		return d.GetDevice().GetDesktopMode(), d.GetDevice().GetUnattendedAllowed()
	}
	set := func(req *desksidev1.SetDevicePolicyRequest) {
		t.Helper()
		if _, err := admin.SetDevicePolicy(actx, req); err != nil {
			t.Fatal(err)
		}
	}
	// The session starts (and finds the agent offline): the agent asks.
	attendedOK := func() {
		t.Helper()
		stream, err := c2.StartDesktopSession(ctx2, &desksidev1.StartDesktopSessionRequest{DeviceId: dev, Control: true})
		if err == nil {
			_, err = stream.Recv()
		}
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "offline") {
			t.Fatalf("tier-2 control of an attended device: %v (want it to start and find the device offline)", err)
		}
	}
	if m, u := mode(); m != desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED || u {
		t.Fatalf("new device: mode %v, unattended %v", m, u)
	}
	attendedOK()

	set(&desksidev1.SetDevicePolicyRequest{Group: "lab", Mode: desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED.Enum()})
	auditHas(t, r, "admin", "group.desktop_policy", "lab")
	if _, err := admin.SetDeviceGroup(actx, &desksidev1.SetDeviceGroupRequest{DeviceId: dev, Group: "lab"}); err != nil {
		t.Fatal(err)
	}
	if m, _ := mode(); m != desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED {
		t.Fatalf("device of an unattended group: mode %v", m)
	}
	if err := startSession(ctx2, c2, dev); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "unattended") {
		t.Fatalf("tier 2 on an unattended device: %v", err)
	}

	// The device's own attended mode wins over its group's, and a change
	// of max sessions alone keeps it.
	set(&desksidev1.SetDevicePolicyRequest{DeviceId: dev, Mode: desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED.Enum()})
	set(&desksidev1.SetDevicePolicyRequest{DeviceId: dev, MaxSessions: 2})
	if m, u := mode(); m != desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED || u {
		t.Fatalf("own attended mode in an unattended group: mode %v, unattended %v", m, u)
	}
	attendedOK()

	set(&desksidev1.SetDevicePolicyRequest{DeviceId: dev, Mode: desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED_NOTICE.Enum()})
	set(&desksidev1.SetDevicePolicyRequest{DeviceId: dev, UnattendedAllowed: true, MaxSessions: 1})
	if m, u := mode(); m != desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED_NOTICE || !u {
		t.Fatalf("with notice, then unattended_allowed from an old client: mode %v, unattended %v", m, u)
	}
	auditHas(t, r, "admin", "device.policy", dev)

	// Back to the group's mode.
	set(&desksidev1.SetDevicePolicyRequest{DeviceId: dev, Mode: desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNSPECIFIED.Enum()})
	if m, u := mode(); m != desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED || u {
		t.Fatalf("following the group again: mode %v, unattended %v", m, u)
	}
}
