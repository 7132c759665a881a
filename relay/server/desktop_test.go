package server_test

import (
	"context"
	"strings"
	"testing"

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

// Sessions need tier 2 and a device policy that allows them; refusals are
// audited and say what to do.
func TestDesktopSessionRefusals(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	st := r.Enroll(t, "desk")
	addTechTo(t, r, "t1", "tier-one-password", desksidev1.Role_ROLE_TIER1)
	c1, ctx1 := r.Console(t, "t1", "tier-one-password")
	err := startSession(ctx1, c1, st.DeviceID)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "StartDesktopSession needs role tier2; you are tier1") {
		t.Fatalf("tier-1 session: %v", err)
	}
	auditHas(t, r, "t1", "access.denied", "/deskside.v1.ConsoleService/StartDesktopSession")

	admin, actx := r.Admin(t)
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
}
