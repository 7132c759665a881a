//go:build unix

package cli_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/command"
	"github.com/deskside/deskside/agent/orgtrust"
	"github.com/deskside/deskside/internal/testpoll"
	"github.com/deskside/deskside/relay/server/servertest"
)

// TestEndpointPolicyShown: a device whose own policy turns commands off
// says so in `devices show` and `devices list`, a command to it is
// refused with the reason and does not run, and a policy change made on
// the device while it is connected reaches the relay without a
// reconnect.
func TestEndpointPolicyShown(t *testing.T) {
	f := startFleet(t)
	st := f.st.Enroll(t, "locked-host")
	if err := orgtrust.WritePolicy(st.Dir, orgtrust.Policy{NoCommands: true}); err != nil {
		t.Fatal(err)
	}
	log := servertest.DiscardLogger()
	guard, err := orgtrust.Open(st.Dir, st.DeviceID, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: staticInventory{"locked-host"}, Health: staticHealth{}, Hostname: "locked-host",
		HealthInterval: 100 * time.Millisecond, // the policy files are looked at every interval
		Commands:       command.New(command.Options{Logger: log}), Guard: guard,
	})
	testpoll.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !a.Link.Connected() {
			return errors.New("agent not connected yet")
		}
		return nil
	})
	dev := st.DeviceID
	admin := f.admin(t)
	row := func(out, key, value string) bool {
		return regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(key) + `:?\s+` + regexp.QuoteMeta(value)).MatchString(out)
	}

	res := admin.must("devices", "show", dev)
	if !strings.Contains(res.stdout, "Endpoint (set on the device: deskside-agent policy)") ||
		!row(res.stdout, "Org key", "not pinned: obeys the relay") ||
		!row(res.stdout, "Commands and actions", "refused (set on the device: deskside-agent policy)") ||
		!row(res.stdout, "Desktop sessions", "allowed") || !row(res.stdout, "Groups", "none") {
		t.Fatalf("devices show:\n%s", res.stdout)
	}
	if res := admin.must("devices", "list"); !strings.Contains(res.stdout, "REFUSES") || !strings.Contains(res.stdout, "no commands") {
		t.Errorf("devices list:\n%s", res.stdout)
	}

	marker := filepath.Join(t.TempDir(), "ran")
	res = admin.run("run", dev, "--", "touch", marker)
	if res.code == 0 || !strings.Contains(res.stdout+res.stderr, "turns off remote commands and actions (deskside-agent policy on the device)") {
		t.Errorf("command to a device that refuses commands: %s", res)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the refused command ran")
	}

	// Changed on the device while connected.
	if err := orgtrust.WritePolicy(st.Dir, orgtrust.Policy{NoUnattended: true, Groups: []string{"lab", "shop"}}); err != nil {
		t.Fatal(err)
	}
	testpoll.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		res := admin.must("devices", "show", dev)
		if !row(res.stdout, "Commands and actions", "allowed") || !row(res.stdout, "Desktop sessions", "refused") || !row(res.stdout, "Groups", "lab, shop") {
			return fmt.Errorf("devices show after the policy change:\n%s", res.stdout)
		}
		return nil
	})
	if !a.Link.Connected() {
		t.Fatal("the agent reconnected")
	}
	if res := admin.run("run", dev, "--", "touch", marker); res.code != 0 {
		t.Fatalf("command once commands are on again: %s", res)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the command did not run: %v", err)
	}
	if res := admin.must("audit", "--action", "device.endpoint_policy", "--json"); !strings.Contains(res.stdout, "commands refused, desktop allowed, no groups → no org key pinned, commands allowed, desktop refused, groups lab,shop") {
		t.Errorf("audit of the policy change:\n%s", res.stdout)
	}
}
