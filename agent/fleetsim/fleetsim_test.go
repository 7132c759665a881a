package fleetsim_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/deskside/deskside/agent/fleetsim"
	"github.com/deskside/deskside/internal/testkit"
	"github.com/deskside/deskside/relay/bus/natsbus/natstest"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
)

// The test drives the real programs: deskside-fleetsim (parent and worker
// processes) against deskside-relay processes it starts, restarts and
// kills. It imports relay code only to find the test services; the
// store is read with plain SQL after the relays stopped.

const agents = 300

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// build builds deskside-relay and deskside-fleetsim into one directory
// (the simulator finds the relay beside itself), once for the tests.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "fleetsim-test-bin-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"relay/cmd/deskside-relay", "agent/cmd/deskside-fleetsim"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, filepath.Base(pkg)), "github.com/deskside/deskside/"+pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// simulate runs the simulator with args and returns its report.
func simulate(t *testing.T, bin string, args ...string) *fleetsim.Summary {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.json")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "deskside-fleetsim"), append(args, "--report", report)...)
	out, err := cmd.CombinedOutput()
	t.Logf("deskside-fleetsim %s\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("deskside-fleetsim: %v", err)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var s fleetsim.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// checkFleet asserts what every run must show: all agents enrolled and
// back after each event, console requests answered or refused with a
// reason, samples acknowledged.
func checkFleet(t *testing.T, s *fleetsim.Summary, events ...string) {
	t.Helper()
	if s.Enrolled != agents || s.EnrollFailed != 0 {
		t.Errorf("enrolled %d of %d, %d failed: %v", s.Enrolled, agents, s.EnrollFailed, s.EnrollErrors)
	}
	if s.ConnectedAtEnd != agents {
		t.Errorf("%d of %d agents connected at the end", s.ConnectedAtEnd, agents)
	}
	for _, want := range events {
		var found bool
		for _, e := range s.Events {
			if !strings.HasPrefix(e.Event, want) {
				continue
			}
			found = true
			if e.Dropped <= 0 || !e.AllBack || e.To100 == "" {
				t.Errorf("%s: %d dropped, all back %v (100%% after %q), want agents dropped and all back", e.Event, e.Dropped, e.AllBack, e.To100)
			}
		}
		if !found {
			t.Errorf("no %q in the events %+v", want, s.Events)
		}
	}
	if len(s.Rounds) != len(s.Events) {
		t.Errorf("%d rounds of console requests, want one at start and one per event", len(s.Rounds))
	}
	for _, r := range s.Rounds {
		if r.Sent == 0 || r.Unanswered != 0 || r.Answered+r.Refused != r.Sent {
			t.Errorf("console requests after %s: %d sent, %d answered, %d refused %v, %d unanswered %v; want each answered or refused with a reason",
				r.After, r.Sent, r.Answered, r.Refused, r.Reasons, r.Unanswered, r.Problems)
		}
		if r.Answered == 0 {
			t.Errorf("console requests after %s: none answered (%v)", r.After, r.Reasons)
		}
	}
	if s.SamplesAcked == 0 || len(s.AgentReports) != agents {
		t.Errorf("%d samples acknowledged, %d agent reports", s.SamplesAcked, len(s.AgentReports))
	}
}

// checkFanOuts asserts that the run made want fan-outs, each a command
// signed over every simulated device that every agent verified and ran,
// and that no agent's guard refused a request.
func checkFanOuts(t *testing.T, s *fleetsim.Summary, want int) {
	t.Helper()
	if !s.Signed {
		t.Error("the agents pinned no organisation key")
	}
	if len(s.FanOuts) != want {
		t.Errorf("%d fan-outs, want %d", len(s.FanOuts), want)
	}
	for _, f := range s.FanOuts {
		if f.Problem != "" || f.Devices != agents || f.Succeeded != agents {
			t.Errorf("fan-out %s via %s: %d devices, %d succeeded, %d failed, %d offline (errors %q, problem %q); want all %d",
				f.After, f.Relay, f.Devices, f.Succeeded, f.Failed, f.Offline, f.Errors, f.Problem, agents)
		}
	}
	if s.RefusedByAgents != 0 {
		t.Errorf("the agents' guard refused %d requests", s.RefusedByAgents)
	}
}

// checkStored asserts that the store holds every sample an agent had
// acknowledged: ids 1..AckedUpTo of each device. rows lists the store's
// (device, id) pairs.
func checkStored(t *testing.T, s *fleetsim.Summary, rows func(yield func(device string, id uint64))) {
	t.Helper()
	stored := map[string]map[uint64]bool{}
	rows(func(dev string, id uint64) {
		if stored[dev] == nil {
			stored[dev] = map[uint64]bool{}
		}
		stored[dev][id] = true
	})
	lost := 0
	var example string
	for _, a := range s.AgentReports {
		for id := uint64(1); id <= a.AckedUpTo; id++ {
			if !stored[a.DeviceID][id] {
				lost++
				if example == "" {
					example = fmt.Sprintf("%s (%s) sample %d of %d acknowledged", a.DeviceID, a.Hostname, id, a.AckedUpTo)
				}
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d acknowledged samples are not in the store, such as %s", lost, example)
	}
	t.Logf("%d acknowledged samples of %d agents, all in the store", s.SamplesAcked, len(s.AgentReports))
}

// TestFleetRestartStorm: 300 agents in two worker processes dialing from
// two loopback addresses, on one relay (SQLite); the relay is
// restarted (SIGTERM, start again) and every agent comes back; a network
// blackhole (in the kernel where it can be: nftables, root) and an
// inventory change on a fifth of the fleet pass; no acknowledged sample
// is missing from the store.
func TestFleetRestartStorm(t *testing.T) {
	testkit.Heavy(t, "builds the relay and the simulator and runs 300 agents")
	bin := build(t)
	data := t.TempDir()
	// Under CI the blackhole is the kernel's (nftables), or the run fails.
	hole := "auto"
	if testkit.CI() {
		hole = "kernel"
	}
	s := simulate(t, bin, "--agents", fmt.Sprint(agents), "--start-relays", "1", "--relay-data", data,
		"--per-worker", fmt.Sprint(agents/2), "--source-addrs", "2", "--duration", "25s", "--health-interval", "2s", "--console-requests", "12",
		"--event", "3s:restart", "--event", "13s:blackhole=2s", "--event", "18s:inventory=20%", "--blackhole-in", hole)
	checkFleet(t, s, "restart")
	t.Logf("blackhole in: %s", s.BlackholeIn)
	if s.Workers != 2 || s.SourceAddrs != 2 {
		t.Errorf("%d workers from %d source addresses, want 2 and 2", s.Workers, s.SourceAddrs)
	}
	if s.InvChanges == 0 {
		t.Error("no inventory changed in the inventory event")
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "relay-0", "deskside.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkStored(t, s, func(yield func(string, uint64)) {
		rs, err := db.Query(`SELECT device_id, id FROM health_raw`)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		for rs.Next() {
			var dev string
			var id int64
			if err := rs.Scan(&dev, &id); err != nil {
				t.Fatal(err)
			}
			yield(dev, uint64(id))
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFleetFailover: 300 agents on two relays sharing PostgreSQL and
// NATS; one relay is killed (-9) and its agents come online on the other,
// where console requests reach them; no acknowledged sample is missing.
func TestFleetFailover(t *testing.T) {
	testkit.Heavy(t, "builds the relay and the simulator and runs 300 agents on two relays")
	dsn := pgtest.DSN(t)
	natsURL := natstest.URL(t)
	bin := build(t)
	s := simulate(t, bin, "--agents", fmt.Sprint(agents), "--start-relays", "2", "--database", dsn, "--nats", natsURL,
		"--nats-prefix", natstest.Prefix(), "--duration", "20s", "--health-interval", "2s", "--console-requests", "12",
		"--event", "2s:fanout", "--event", "5s:kill=0", "--event", "14s:fanout")
	checkFleet(t, s, "kill -9 relay 0")
	checkFanOuts(t, s, 2)
	// Every message the agents got was a request they answered: a command
	// that finished through the other relay is not followed by a cancel.
	if s.Requests != s.Answered+s.RefusedByAgents {
		t.Errorf("the agents received %d relay messages, answered %d and refused %d: the rest asked nothing of them (a cancel after a command had finished?)",
			s.Requests, s.Answered, s.RefusedByAgents)
	}
	for _, e := range s.Events {
		if strings.HasPrefix(e.Event, "kill") && e.Dropped < agents/2 {
			t.Errorf("%s: %d agents dropped, want the killed relay's %d", e.Event, e.Dropped, agents/2)
		}
	}
	last := s.Rounds[len(s.Rounds)-1]
	if first := s.Rounds[0]; last.Relay == first.Relay {
		t.Errorf("console requests after the kill went to %s, the killed relay", last.Relay)
	}

	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	checkStored(t, s, func(yield func(string, uint64)) {
		rs, err := conn.Query(ctx, `SELECT device_id, id::bigint FROM health_raw`)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		for rs.Next() {
			var dev string
			var id int64
			if err := rs.Scan(&dev, &id); err != nil {
				t.Fatal(err)
			}
			yield(dev, uint64(id))
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
	})
}
