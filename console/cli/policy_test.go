package cli_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

func TestDevicesPolicy(t *testing.T) {
	f := startFleet(t)
	dev := f.agent(t, "policy-host")
	admin := f.admin(t)
	t2 := f.tech(t, "tier2", desksidev1.Role_ROLE_TIER2)

	stored := func() (bool, int) {
		t.Helper()
		d, err := f.srv.Store().GetDevice(context.Background(), dev)
		if err != nil {
			t.Fatal(err)
		}
		return d.UnattendedAllowed, d.MaxSessions
	}

	res := t2.must("devices", "policy", dev)
	if !strings.Contains(res.stdout, "Unattended access:") || !strings.Contains(res.stdout, "no (remote sessions need") {
		t.Errorf("policy: %s", res)
	}

	// The relay's refusal names the command that lifts it; run it as written.
	cs, ctx := f.st.Console(t, "tier2", "technician-password-1")
	stream, err := cs.StartDesktopSession(ctx, &desksidev1.StartDesktopSessionRequest{DeviceId: dev, Control: true})
	if err == nil {
		_, err = stream.Recv()
	}
	m := regexp.MustCompile("deskside (devices policy [^ ]+ --unattended)").FindStringSubmatch(status.Convert(err).Message())
	if m == nil {
		t.Fatalf("desktop session on a device that needs consent: %v", err)
	}
	res = admin.must(strings.Fields(m[1])...)
	if !strings.Contains(res.stdout, "has now this remote access policy") || !strings.Contains(res.stdout, "allowed") {
		t.Errorf("policy --unattended: %s", res)
	}
	if u, n := stored(); !u || n != 1 {
		t.Errorf("stored policy unattended %v, max sessions %d; want true, 1", u, n)
	}

	admin.must("devices", "policy", dev, "--max-sessions", "3")
	if u, n := stored(); !u || n != 3 {
		t.Errorf("--max-sessions 3 keeps unattended: stored %v, %d", u, n)
	}
	res = admin.must("devices", "policy", dev, "--no-unattended")
	if u, n := stored(); u || n != 3 {
		t.Errorf("--no-unattended keeps max sessions: stored %v, %d", u, n)
	}
	if res := admin.must("devices", "show", dev); !strings.Contains(res.stdout, "Sessions at once:") || !strings.Contains(res.stdout, "3") {
		t.Errorf("devices show lacks the policy: %s", res)
	}

	admin.fails(2, "--max-sessions must be from 1 to 16", "devices", "policy", dev, "--max-sessions", "17")
	admin.fails(2, "not both", "devices", "policy", dev, "--unattended", "--no-unattended")
	t2.fails(1, "permission denied", "devices", "policy", dev, "--unattended")
	admin.fails(1, "see `deskside devices list`", "devices", "policy", "no-such-device", "--unattended")
}
