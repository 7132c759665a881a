package fleetsim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// checkNames are the agent's built-in checks (agent/diag).
var checkNames = []string{
	"cpu.hogs", "cpu.load", "disk.inodes", "disk.smart", "disk.space", "memory.pressure", "memory.swap",
	"network.dns", "network.gateway", "network.https", "network.interfaces", "network.proxy",
	"services.failed", "system.uptime", "time.sync", "updates.pending", "updates.reboot",
}

// sleep waits d or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// between is a random duration in [lo, hi).
func between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rand.Int64N(int64(hi-lo)))
}

// simChecks answers diagnostics (link.Checker) as the real runner does —
// all checks in parallel, within the budget — with made-up results after
// realistic delays, without touching the machine.
type simChecks struct {
	m *machine
	c *counters
}

func (s simChecks) Run(ctx context.Context, req *desksidev1.RunChecks) *desksidev1.CheckReport {
	start := time.Now()
	names := req.GetChecks()
	if len(names) == 0 {
		names = checkNames
	}
	// The slowest check sets the pace (network.https, SMART): 50–900 ms.
	if !sleep(ctx, between(50*time.Millisecond, 900*time.Millisecond)) {
		return &desksidev1.CheckReport{Started: timestamppb.New(start), Duration: durationpb.New(time.Since(start))}
	}
	rep := &desksidev1.CheckReport{Started: timestamppb.New(start), Overall: desksidev1.CheckStatus_CHECK_STATUS_PASS}
	for _, n := range names {
		r := &desksidev1.CheckResult{Name: n, Status: desksidev1.CheckStatus_CHECK_STATUS_PASS, Summary: "simulated: fine",
			Duration: durationpb.New(between(time.Millisecond, 50*time.Millisecond))}
		switch {
		case !known(n):
			r.Status, r.Summary, r.Hint = desksidev1.CheckStatus_CHECK_STATUS_UNAVAILABLE, "unknown check "+n, "run `deskside diag DEVICE` without names to list the checks"
		case rand.IntN(20) == 0:
			r.Status, r.Summary, r.Hint = desksidev1.CheckStatus_CHECK_STATUS_WARN, "simulated: getting close to a limit", "look again tomorrow"
		case rand.IntN(100) == 0:
			r.Status, r.Summary, r.Hint = desksidev1.CheckStatus_CHECK_STATUS_FAIL, "simulated: failed", "restart the device"
		}
		if r.Status > rep.Overall && r.Status != desksidev1.CheckStatus_CHECK_STATUS_UNAVAILABLE {
			rep.Overall = r.Status
		}
		rep.Results = append(rep.Results, r)
	}
	rep.Duration = durationpb.New(time.Since(start))
	s.c.answered.Add(1)
	return rep
}

func known(name string) bool {
	for _, n := range checkNames {
		if n == name {
			return true
		}
	}
	return false
}

// simCommands runs commands (link.CommandRunner) without spawning a
// process: it streams a few lines of made-up output over 20–500 ms and
// exits 0, or as the relay's timeout or a cancel ends it.
type simCommands struct {
	m *machine
	c *counters
}

func (s simCommands) Run(ctx context.Context, req *desksidev1.RunCommand, emit func(*desksidev1.CommandOutput) error) *desksidev1.CommandExit {
	start := time.Now()
	if to := req.GetTimeout().AsDuration(); to > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, to)
		defer cancel()
	}
	cmd := req.GetCommand()
	if cmd == "" {
		cmd = "script"
	}
	lines := 1 + rand.IntN(5)
	var sent uint64
	for i := range lines {
		if !sleep(ctx, between(20*time.Millisecond, 100*time.Millisecond)) {
			timedOut := ctx.Err() == context.DeadlineExceeded
			return &desksidev1.CommandExit{ExitCode: -1, TimedOut: timedOut, Canceled: !timedOut, OutputBytes: sent, Duration: durationpb.New(time.Since(start))}
		}
		line := fmt.Sprintf("%s: simulated output line %d of %q\n", s.m.hostname, i+1, strings.TrimSpace(cmd))
		if err := emit(&desksidev1.CommandOutput{Stream: desksidev1.CommandStream_COMMAND_STREAM_STDOUT, Data: []byte(line), Seq: uint64(i + 1)}); err != nil {
			return &desksidev1.CommandExit{ExitCode: -1, Error: err.Error(), OutputBytes: sent, Duration: durationpb.New(time.Since(start))}
		}
		sent += uint64(len(line))
	}
	s.c.answered.Add(1)
	return &desksidev1.CommandExit{ExitCode: 0, OutputBytes: sent, Duration: durationpb.New(time.Since(start))}
}

// simActions answers remediation actions (link.ActionRunner) after a short
// delay, doing nothing.
type simActions struct{ c *counters }

func (s simActions) Run(ctx context.Context, req *desksidev1.RunAction) *desksidev1.ActionResult {
	if !sleep(ctx, between(10*time.Millisecond, 300*time.Millisecond)) {
		return &desksidev1.ActionResult{Message: "cancelled"}
	}
	s.c.answered.Add(1)
	return &desksidev1.ActionResult{Ok: true, Message: fmt.Sprintf("simulated: %T done", req.GetAction())}
}

// requestCounter is the link's Guard: it counts every request (pings are
// answered by the link itself, so this is where they are seen) and hands
// it to next, the agent's own guard when the fleet pins an organisation
// key; without one every request passes, as on an agent that never
// pinned one.
type requestCounter struct {
	c    *counters
	next interface {
		Check(*desksidev1.RelayMessage) error
	}
}

func (g requestCounter) Check(m *desksidev1.RelayMessage) error {
	g.c.requests.Add(1)
	if g.next != nil {
		if err := g.next.Check(m); err != nil {
			g.c.refused.Add(1)
			return err
		}
	}
	if m.GetPing() != nil {
		g.c.answered.Add(1) // the link answers at once
	}
	return nil
}
