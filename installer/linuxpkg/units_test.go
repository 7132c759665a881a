package linuxpkg

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/deskside/deskside/internal/testkit"
	"github.com/deskside/deskside/relay/config"
)

// MaxRelayExposure is the highest `systemd-analyze security` exposure the
// relay's unit may score (0 best, 10 worst; below 2 systemd rates "OK").
const MaxRelayExposure = 2.0

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`)

// RelayExposure runs `systemd-analyze security --offline=yes` on the
// relay's unit file and returns its overall exposure and systemd's word
// for it ("OK", "MEDIUM", …).
func relayExposure(t *testing.T) (float64, string, string) {
	t.Helper()
	_, err := exec.LookPath("systemd-analyze")
	testkit.Need(t, "systemd-analyze", err, "install the Debian package systemd")
	dir := t.TempDir()
	unit := filepath.Join(dir, "deskside-relay.service")
	b, err := embedded.ReadFile("files/deskside-relay.service")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unit, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", unit).CombinedOutput()
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security gave no overall exposure:\n%s", out)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v, string(m[2]), string(out)
}

// TestRelayUnitHardening scores the relay's unit with systemd itself and
// checks the settings the issue names are there.
func TestRelayUnitHardening(t *testing.T) {
	score, word, out := relayExposure(t)
	t.Logf("systemd-analyze security: deskside-relay.service exposure %.1f %s", score, word)
	if score > MaxRelayExposure {
		t.Errorf("deskside-relay.service exposure %.1f %s, above %.1f:\n%s", score, word, MaxRelayExposure, out)
	}
	unit, _ := embedded.ReadFile("files/deskside-relay.service")
	for _, want := range []string{
		"User=" + RelayUser, "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"ReadWritePaths=" + RelayData, "PrivateDevices=yes", "CapabilityBoundingSet=\n", "AmbientCapabilities=\n",
		"SystemCallFilter=@system-service", "ExecStart=/usr/bin/deskside-relay --config " + RelayConfig + "\n", "Restart=on-failure",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("deskside-relay.service lacks %q", strings.TrimSpace(want))
		}
	}
	dropin, _ := embedded.ReadFile("files/low-ports.conf")
	if !strings.Contains(string(dropin), "AmbientCapabilities=CAP_NET_BIND_SERVICE") ||
		strings.Contains(strings.ReplaceAll(string(dropin), "CAP_NET_BIND_SERVICE", ""), "CAP_") {
		t.Errorf("low-ports.conf must grant CAP_NET_BIND_SERVICE and nothing else:\n%s", dropin)
	}
}

// TestAgentUnit: the agent's unit restarts on failure, waits for an
// enrollment instead of failing, and keeps what the desktop helper needs
// (root, setuid to the console user: ADR 0027).
func TestAgentUnit(t *testing.T) {
	unit, _ := embedded.ReadFile("files/deskside-agent.service")
	s := string(unit)
	for _, want := range []string{"Restart=on-failure", "--wait-enrollment", "--state " + AgentState, "WantedBy=multi-user.target"} {
		if !strings.Contains(s, want) {
			t.Errorf("deskside-agent.service lacks %q", want)
		}
	}
	// Each of these would stop the service from starting the helper as
	// the user (setuid/setgid, /proc of the user's processes).
	for _, bad := range []string{"\nUser=", "NoNewPrivileges=yes", "CapabilityBoundingSet=", "ProtectProc=", "PrivateUsers=yes", "SystemCallFilter="} {
		if strings.Contains(s, bad) {
			t.Errorf("deskside-agent.service has %q, which breaks the desktop helper (ADR 0027)", strings.TrimSpace(bad))
		}
	}
}

// TestRelayYAML: the packaged relay.yaml is docs/relay.yaml.example (what
// `deskside-relay config example` prints) with only the data directory
// set, and the relay loads it with that directory from the file.
func TestRelayYAML(t *testing.T) {
	got := string(RelayYAML())
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "relay.yaml.example"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Replace(got, "\ndata: ", "\n#data: ", 1) != string(doc) {
		t.Errorf("the packaged relay.yaml is not docs/relay.yaml.example with data set:\n%s", got)
	}
	p := filepath.Join(t.TempDir(), "relay.yaml")
	if err := os.WriteFile(p, RelayYAML(), 0o640); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(config.Options{Args: []string{"--config", p}, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Get("data"); s.Source != config.File || s.Value != RelayData {
		t.Errorf("data = %v from %v, want %s from the file", s.Value, s.Source, RelayData)
	}
	unit, _ := embedded.ReadFile("files/deskside-relay.service")
	if strings.Contains(string(unit), "EnvironmentFile") || strings.Contains(string(unit), "$DESKSIDE") {
		t.Errorf("deskside-relay.service still takes settings from the environment:\n%s", unit)
	}
}
