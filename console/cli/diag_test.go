package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/action"
	"github.com/deskside/deskside/agent/command"
	"github.com/deskside/deskside/agent/diag"
	"github.com/deskside/deskside/agent/link"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/pki"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
)

// fleet is a servertest relay seen through the CLI test helpers.
type fleet struct {
	*relay
	st *servertest.Relay
}

func startFleet(t *testing.T) *fleet {
	t.Helper()
	sr := servertest.Start(t, servertest.Options{})
	return &fleet{
		relay: &relay{srv: sr.Srv, addr: sr.Addr, caPath: filepath.Join(sr.Dir, pki.CAFile), outputs: new(bytes.Buffer)},
		st:    sr,
	}
}

// admin is a CLI signed in as the relay's admin.
func (f *fleet) admin(t *testing.T) *cliEnv {
	t.Helper()
	c := f.cli(t)
	c.login("admin", servertest.AdminPassword)
	return c
}

// tech creates a technician with role and returns a CLI signed in as them.
func (f *fleet) tech(t *testing.T, name string, role desksidev1.Role) *cliEnv {
	t.Helper()
	const pw = "technician-password-1"
	hash, err := auth.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Store().CreateTechnician(context.Background(), store.Technician{
		Name: name, PasswordHash: hash, Role: int(role), CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	c := f.cli(t)
	c.login(name, pw)
	return c
}

// staticInventory and staticHealth are the only fakes: checks, commands
// and actions are the real agent runners.
type staticInventory struct{ host string }

func (s staticInventory) Read(context.Context) (*desksidev1.Inventory, error) {
	return &desksidev1.Inventory{
		Hostname: s.host, CollectedAt: timestamppb.Now(),
		Os:     &desksidev1.OperatingSystem{Name: "debian", Version: "12", Arch: "amd64"},
		Memory: &desksidev1.Memory{TotalBytes: 8 << 30},
	}, nil
}

type staticHealth struct{}

func (staticHealth) Sample(context.Context) (*desksidev1.HealthSample, error) {
	return &desksidev1.HealthSample{Time: timestamppb.Now(), CpuPercent: 5, MemUsedBytes: 1 << 30, MemTotalBytes: 8 << 30}, nil
}

// agent enrolls host and runs a real agent for it; it returns the device ID.
func (f *fleet) agent(t *testing.T, host string) string {
	t.Helper()
	return f.agentWith(t, host, staticInventory{host})
}

// agentWith is agent with inv as the agent's inventory source.
func (f *fleet) agentWith(t *testing.T, host string, inv link.InventoryReader) string {
	t.Helper()
	id, _ := f.agentRun(t, host, inv)
	return id
}

// agentRun is agentWith that also returns the running agent.
func (f *fleet) agentRun(t *testing.T, host string, inv link.InventoryReader) (string, *servertest.Agent) {
	t.Helper()
	st := f.st.Enroll(t, host)
	log := servertest.DiscardLogger()
	a := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: inv, Health: staticHealth{}, Hostname: host,
		Checks:   diag.New(diag.Options{Logger: log}),
		Commands: command.New(command.Options{Logger: log}),
		Actions:  action.New(action.Options{Logger: log}),
	})
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !a.Link.Connected() {
			return errors.New("agent not connected yet")
		}
		return nil
	})
	// The relay marks the device online once the agent's hello is stored.
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		d, err := f.srv.Store().GetDevice(context.Background(), st.DeviceID)
		if err != nil || !d.Online {
			return fmt.Errorf("device %s not online yet (%v)", st.DeviceID, err)
		}
		return nil
	})
	return st.DeviceID, a
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestDiag(t *testing.T) {
	f := startFleet(t)
	dev := f.agent(t, "diag-host")
	admin := f.admin(t)
	// Diagnostics are for tier 1 too.
	t1 := f.tech(t, "tier1", desksidev1.Role_ROLE_TIER1)

	t.Run("unknown check", func(t *testing.T) {
		res := t1.fails(2, `unknown check "no.such.check"; the checks are:`, "diag", dev, "network.proxy", "no.such.check")
		for _, name := range wire.CheckNames {
			if !strings.Contains(res.stderr, name) {
				t.Errorf("the error does not list %s:\n%s", name, res.stderr)
			}
		}
		if res.stdout != "" {
			t.Errorf("nothing ran, yet: %s", res)
		}
	})

	t.Run("a check that passes", func(t *testing.T) {
		res := t1.run("diag", dev, "network.proxy")
		noEscapes(t, "diag", res)
		if res.code != 0 {
			t.Fatalf("pass only: want exit 0, got %s", res)
		}
		for _, want := range []string{"STATUS", "CHECK", "SUMMARY", "PASS", "network.proxy"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("diag output lacks %q:\n%s", want, res.stdout)
			}
		}
		if l := lastLine(res.stdout); !strings.HasPrefix(l, "Overall: PASS (1 check in ") || !strings.Contains(l, "saved as report") {
			t.Errorf("last line %q", l)
		}
		// Header and rows line up.
		lines := strings.Split(res.stdout, "\n")
		col := strings.Index(lines[0], "CHECK")
		for _, l := range lines[1:2] {
			if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
				t.Errorf("row %q does not line up with the header %q", l, lines[0])
			}
		}
	})

	t.Run("group thresholds warn and fail", func(t *testing.T) {
		res := admin.must("group", "thresholds", "tight", "--memory-warn", "0.001")
		if !strings.Contains(res.stdout, "Memory warn:") || !strings.Contains(res.stdout, "0.001%") {
			t.Errorf("group thresholds: %s", res)
		}
		res = admin.must("devices", "group", dev, "tight")
		if !strings.Contains(res.stdout, "is in group tight now") {
			t.Errorf("devices group: %s", res)
		}
		if res := admin.must("devices", "show", dev); !strings.Contains(res.stdout, "Group:") || !strings.Contains(res.stdout, "tight") {
			t.Errorf("devices show lacks the group: %s", res)
		}

		res = t1.run("diag", dev, "memory.pressure")
		noEscapes(t, "diag warn", res)
		if res.code != 3 {
			t.Fatalf("a warning: want exit 3, got %s", res)
		}
		for _, want := range []string{"WARN", "memory.pressure", "\nmemory.pressure: WARN\n", "  used:", "Hint: "} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("diag warn lacks %q:\n%s", want, res.stdout)
			}
		}
		if l := lastLine(res.stdout); !strings.HasPrefix(l, "Overall: WARN (1 check in ") {
			t.Errorf("last line %q", l)
		}

		admin.must("group", "thresholds", "tight", "--memory-warn", "0.001", "--memory-fail", "0.002")
		res = t1.run("diag", dev, "memory.pressure", "network.proxy")
		if res.code != 4 || !strings.Contains(res.stdout, "FAIL") || !strings.HasPrefix(lastLine(res.stdout), "Overall: FAIL") {
			t.Fatalf("a failure: want exit 4, got %s", res)
		}

		res = t1.run("diag", dev, "memory.pressure", "--json")
		if res.code != 4 {
			t.Fatalf("--json keeps the exit code: %s", res)
		}
		var resp desksidev1.RunChecksResponse
		if err := protojson.Unmarshal([]byte(res.stdout), &resp); err != nil {
			t.Fatalf("--json: %v\n%s", err, res.stdout)
		}
		if resp.GetReport().GetOverall() != desksidev1.CheckStatus_CHECK_STATUS_FAIL || resp.GetReportId() == 0 {
			t.Errorf("--json report: %v", &resp)
		}

		// Loose thresholds: a passing check's evidence shows only with -v.
		admin.must("group", "thresholds", "tight", "--memory-warn", "99.99", "--memory-fail", "100")
		res = t1.run("diag", dev, "memory.pressure")
		if res.code != 0 || !strings.Contains(res.stdout, "PASS") || strings.Contains(res.stdout, "memory.pressure: PASS") {
			t.Errorf("loose thresholds: %s", res)
		}
		res = t1.run("diag", dev, "memory.pressure", "-v")
		if res.code != 0 || !strings.Contains(res.stdout, "memory.pressure: PASS\n  used:") {
			t.Errorf("-v: %s", res)
		}
		res = admin.must("group", "thresholds", "tight", "--reset")
		if !strings.Contains(res.stdout, "default thresholds for every check") {
			t.Errorf("--reset: %s", res)
		}
		res = admin.must("devices", "group", dev, "")
		if !strings.Contains(res.stdout, "is in no group now") {
			t.Errorf("devices group \"\": %s", res)
		}
		t1.fails(1, "permission denied: SetGroupCheckConfig needs role admin; you are tier1", "group", "thresholds", "tight", "--disk-warn", "80")
		t1.fails(1, "permission denied: SetDeviceGroup needs role admin; you are tier1", "devices", "group", dev, "tight")
		admin.fails(2, "--disk-warn 96 is above --disk-fail 95", "group", "thresholds", "g", "--disk-warn", "96", "--disk-fail", "95")
		admin.fails(2, "give at least one setting", "group", "thresholds", "g")
		admin.fails(2, "between 0 and 100", "group", "thresholds", "g", "--swap-warn", "101")
	})

	t.Run("triage", func(t *testing.T) {
		res := t1.run("diag", dev, "--budget", "10s")
		noEscapes(t, "triage", res)
		names := diag.New(diag.Options{}).Names()
		for _, name := range names {
			if !strings.Contains(res.stdout, name) {
				t.Errorf("triage lacks %s", name)
			}
		}
		m := regexp.MustCompile(fmt.Sprintf(`^Overall: (PASS|WARN|FAIL|N/A) \(%d checks in `, len(names))).FindStringSubmatch(lastLine(res.stdout))
		if m == nil {
			t.Fatalf("triage: %s", res)
		}
		want := map[string]int{"PASS": 0, "N/A": 0, "WARN": 3, "FAIL": 4}[m[1]]
		if res.code != want {
			t.Errorf("overall %s: exit %d, want %d", m[1], res.code, want)
		}
		t1.fails(2, "--budget must be between", "diag", dev, "--budget", "2m")
		t1.fails(1, "no device", "diag", "dev-nope")
	})

	t.Run("history", func(t *testing.T) {
		res := t1.must("diag", "history", dev)
		noEscapes(t, "diag history", res)
		for _, want := range []string{"REPORT", "TECHNICIAN", "OVERALL", "NOT PASSING", "tier1", "memory.pressure (fail)", "memory.pressure (warn)"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("history lacks %q:\n%s", want, res.stdout)
			}
		}
		// pass/N/A, warn, fail, --json, default, -v, triage.
		if n := strings.Count(res.stdout, "\n"); n != 1+7 {
			t.Errorf("history: %d lines, want header + 7 reports:\n%s", n, res.stdout)
		}
		res = t1.must("diag", "history", dev, "--limit", "2", "--json")
		var reps []json.RawMessage
		if err := json.Unmarshal([]byte(res.stdout), &reps); err != nil || len(reps) != 2 {
			t.Errorf("history --json: %v: %s", err, res.stdout)
		}
		first := new(desksidev1.StoredCheckReport)
		if err := protojson.Unmarshal(reps[0], first); err != nil || first.GetId() == 0 {
			t.Fatalf("history --json element: %v", err)
		}
		res = t1.must("diag", "history", dev, "--report", strconv.FormatInt(first.GetId(), 10))
		if !strings.Contains(res.stdout, fmt.Sprintf("Report %d of %s, run by tier1", first.GetId(), dev)) ||
			!strings.HasPrefix(lastLine(res.stdout), "Overall: ") {
			t.Errorf("history --report: %s", res)
		}
		t1.fails(1, "has no stored report 999999", "diag", "history", dev, "--report", "999999")
		other := f.st.Enroll(t, "never-checked")
		res = t1.must("diag", "history", other.DeviceID)
		if !strings.Contains(res.stdout, "No diagnostics reports for") {
			t.Errorf("empty history: %s", res)
		}
	})
}
