package cli_test

import (
	"context"
	"strings"
	"testing"

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
	if !strings.Contains(res.stdout, "Unattended access:") || !strings.Contains(res.stdout, "Remote access mode:") || !strings.Contains(res.stdout, "attended (each session asks") {
		t.Errorf("policy: %s", res)
	}

	res = admin.must("devices", "policy", dev, "--unattended")
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
	admin.fails(2, "pass one of", "devices", "policy", dev, "--unattended", "--no-unattended")
	admin.fails(2, "--mode must be", "devices", "policy", dev, "--mode", "sometimes")
	admin.fails(2, "no device ID", "devices", "policy", dev, "--group", "lab", "--mode", "notice")

	res = admin.must("devices", "policy", dev, "--mode", "notice", "--max-sessions", "2")
	if u, n := stored(); !u || n != 2 || !strings.Contains(res.stdout, "notice (sessions start without asking, and the user is told") {
		t.Errorf("--mode notice: stored %v, %d; %s", u, n, res)
	}
	res = admin.must("devices", "policy", dev, "--mode", "group")
	if u, _ := stored(); u || !strings.Contains(res.stdout, "attended (each session") {
		t.Errorf("--mode group (no group): stored %v; %s", u, res)
	}
	admin.must("devices", "policy", "--group", "lab", "--mode", "unattended")
	admin.must("devices", "group", dev, "lab")
	if res := admin.must("devices", "policy", dev); !strings.Contains(res.stdout, "unattended (sessions start without asking the user") {
		t.Errorf("device of an unattended group: %s", res)
	}
	t2.fails(1, "permission denied", "devices", "policy", dev, "--unattended")
	admin.fails(1, "see `deskside devices list`", "devices", "policy", "no-such-device", "--unattended")
}
