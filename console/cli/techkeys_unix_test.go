//go:build unix

package cli_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/action"
	"github.com/deskside/deskside/agent/command"
	"github.com/deskside/deskside/agent/orgtrust"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// TestSignedRunWithCertificateFromRelay: a technician whose certificate
// an admin published on the relay (never installed by hand) runs a
// command on an agent that pins the organisation key; before the
// certificate, the same command is refused and nothing runs.
func TestSignedRunWithCertificateFromRelay(t *testing.T) {
	f := startFleet(t)
	admin := f.admin(t)
	orgKey := filepath.Join(t.TempDir(), "org-key.pem")
	orgFP := regexp.MustCompile(`Fingerprint: (\S+)`).FindStringSubmatch(admin.must("org", "init", orgKey).stdout)[1]

	st := f.st.Enroll(t, "signed-host")
	if err := orgtrust.Pin(st.Dir, orgFP); err != nil {
		t.Fatal(err)
	}
	log := servertest.DiscardLogger()
	guard, err := orgtrust.Open(st.Dir, st.DeviceID, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: staticInventory{"signed-host"}, Health: staticHealth{}, Hostname: "signed-host",
		Commands: command.New(command.Options{Logger: log}), Actions: action.New(action.Options{Logger: log}), Guard: guard,
	})
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !a.Link.Connected() {
			return errors.New("agent not connected yet")
		}
		return nil
	})
	dev := st.DeviceID
	alice := f.tech(t, "alice", desksidev1.Role_ROLE_TIER2)
	alice.must("technician", "keygen")
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")

	res := alice.run("run", dev, "--", "touch", marker)
	if res.code == 0 || !strings.Contains(res.stderr, "not certified yet") {
		t.Errorf("unsigned run on a pinning agent: %s", res)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the agent ran an unsigned command")
	}

	admin.must("technician", "certify", "alice", "--org-key", orgKey, "--role", "tier2")
	res = alice.must("run", dev, "--", "touch", marker)
	if !strings.Contains(res.stderr, "installed your certificate from the relay") {
		t.Errorf("signed run: %s", res)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the signed command did not run: %v", err)
	}
	_, certPath := techFiles(alice)
	if st, err := os.Stat(certPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("certificate not installed 0600: %v", err)
	}
	// The next run signs with the installed certificate, without asking.
	os.Remove(marker)
	if res := alice.must("run", dev, "--", "touch", marker); strings.Contains(res.stderr, "installed") {
		t.Errorf("second run fetched again: %s", res)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("second signed command did not run: %v", err)
	}
}
