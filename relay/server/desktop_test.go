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
	err = startSession(actx, admin, st.DeviceID)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "consent") {
		t.Fatalf("attended device: %v", err)
	}
	auditHas(t, r, "admin", "desktop.refused", st.DeviceID)

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
