package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/deskside/deskside/agent/action"
	"github.com/deskside/deskside/agent/command"
	"github.com/deskside/deskside/agent/diag"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
)

// diagAgent runs a real agent with the real checks, command and action
// runners.
func diagAgent(t *testing.T, r *servertest.Relay, host string) (*servertest.Agent, string) {
	t.Helper()
	st := r.Enroll(t, host)
	log := servertest.DiscardLogger()
	a := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: &fakeInventory{inv: sampleInventory()}, Health: fakeSampler{}, Hostname: host,
		Checks:   diag.New(diag.Options{Logger: log}),
		Commands: command.New(command.Options{Logger: log}),
		Actions:  action.New(action.Options{Logger: log}),
	})
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !a.Link.Connected() {
			return errNotYet
		}
		return nil
	})
	return a, st.DeviceID
}

func TestChecksThroughRelay(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	_, dev := diagAgent(t, r, "diag-host")
	addTechTo(t, r, "t1", "tier-one-password", desksidev1.Role_ROLE_TIER1)
	cs, ctx := r.Console(t, "t1", "tier-one-password")

	resp, err := cs.RunChecks(ctx, &desksidev1.RunChecksRequest{DeviceId: dev})
	if err != nil {
		t.Fatalf("tier-1 triage: %v", err)
	}
	rep := resp.GetReport()
	names := map[string]desksidev1.CheckStatus{}
	for _, res := range rep.GetResults() {
		names[res.GetName()] = res.GetStatus()
		if res.GetStatus() == desksidev1.CheckStatus_CHECK_STATUS_UNSPECIFIED || res.GetSummary() == "" {
			t.Errorf("%s: status %v summary %q", res.GetName(), res.GetStatus(), res.GetSummary())
		}
	}
	for _, n := range diag.New(diag.Options{}).Names() {
		if _, ok := names[n]; !ok {
			t.Errorf("triage lacks %s", n)
		}
	}
	if names["network.interfaces"] != desksidev1.CheckStatus_CHECK_STATUS_PASS {
		t.Errorf("network.interfaces on this machine: %v", names["network.interfaces"])
	}
	hist, err := cs.ListCheckReports(ctx, &desksidev1.ListCheckReportsRequest{DeviceId: dev})
	if err != nil || len(hist.GetReports()) != 1 || hist.GetReports()[0].GetTechnician() != "t1" {
		t.Fatalf("history: %v %v", hist, err)
	}

	// Group thresholds reach the agent: a dead resolver fails DNS, a tiny
	// load threshold warns.
	admin, actx := r.Admin(t)
	if _, err := admin.SetGroupCheckConfig(actx, &desksidev1.SetGroupCheckConfigRequest{Group: "strict", Config: &desksidev1.CheckConfig{
		DnsServers: []string{deadAddr(t)}, DnsName: "relay.deskside.test", LoadWarnPerCore: 0.000001,
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SetDeviceGroup(actx, &desksidev1.SetDeviceGroupRequest{DeviceId: dev, Group: "strict"}); err != nil {
		t.Fatal(err)
	}
	resp, err = cs.RunChecks(ctx, &desksidev1.RunChecksRequest{DeviceId: dev, Checks: []string{"network.dns", "cpu.load"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]desksidev1.CheckStatus{}
	for _, res := range resp.GetReport().GetResults() {
		got[res.GetName()] = res.GetStatus()
	}
	if got["network.dns"] != desksidev1.CheckStatus_CHECK_STATUS_FAIL || got["cpu.load"] == desksidev1.CheckStatus_CHECK_STATUS_PASS {
		t.Fatalf("group thresholds not applied: %v", got)
	}
	if resp.GetReport().GetOverall() != desksidev1.CheckStatus_CHECK_STATUS_FAIL {
		t.Errorf("overall %v", resp.GetReport().GetOverall())
	}
	auditHas(t, r, "t1", "checks.run", dev)
}

// deadAddr is a loopback UDP/TCP address nothing listens on.
func deadAddr(t *testing.T) string {
	l, err := (netListenConfig{}).listen()
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func addTechTo(t *testing.T, r *servertest.Relay, name, pw string, role desksidev1.Role) {
	t.Helper()
	addTech(t, &relay{srv: r.Srv}, name, pw, role)
}

func auditHas(t *testing.T, r *servertest.Relay, actor, action, target string) store.AuditEvent {
	t.Helper()
	evs, err := r.Srv.Store().ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Actor == actor && e.Action == action && e.Target == target {
			return e
		}
	}
	t.Fatalf("no audit event %s %s %s", actor, action, target)
	return store.AuditEvent{}
}

// runCmd runs a command through the relay and collects its events.
type cmdResult struct {
	stdout, stderr string
	exits          map[string]*desksidev1.CommandExit
	offline        map[string]*desksidev1.DeviceOffline
	summary        *desksidev1.CommandSummary
	seqs           []uint64
}

func runCmd(ctx context.Context, cs desksidev1.ConsoleServiceClient, req *desksidev1.RunCommandRequest, onOutput func(string)) (*cmdResult, error) {
	st, err := cs.RunCommand(ctx, req)
	if err != nil {
		return nil, err
	}
	res := &cmdResult{exits: map[string]*desksidev1.CommandExit{}, offline: map[string]*desksidev1.DeviceOffline{}}
	for {
		m, err := st.Recv()
		if err != nil {
			if res.summary != nil {
				return res, nil
			}
			return res, err
		}
		switch e := m.GetEvent().(type) {
		case *desksidev1.RunCommandResponse_Output:
			if e.Output.GetStream() == desksidev1.CommandStream_COMMAND_STREAM_STDERR {
				res.stderr += string(e.Output.GetData())
			} else {
				res.stdout += string(e.Output.GetData())
			}
			res.seqs = append(res.seqs, e.Output.GetSeq())
			if onOutput != nil {
				onOutput(res.stdout)
			}
		case *desksidev1.RunCommandResponse_Exit:
			res.exits[m.GetDeviceId()] = e.Exit
		case *desksidev1.RunCommandResponse_Offline:
			res.offline[m.GetDeviceId()] = e.Offline
		case *desksidev1.RunCommandResponse_Summary:
			res.summary = e.Summary
		}
	}
}

func shell(cmd string) *desksidev1.RunCommand { return &desksidev1.RunCommand{Command: cmd} }

func TestCommandsThroughRelay(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	_, dev := diagAgent(t, r, "cmd-host")
	cs, ctx := r.Admin(t)

	t.Run("streaming order and exit code", func(t *testing.T) {
		res, err := runCmd(ctx, cs, &desksidev1.RunCommandRequest{DeviceId: dev,
			Command: shell(`for i in $(seq 1 3000); do echo line $i; done; echo err >&2; exit 3`)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for i := 1; i <= 3000; i++ {
			fmt.Fprintf(&want, "line %d\n", i)
		}
		if res.stdout != want.String() || res.stderr != "err\n" {
			t.Fatalf("output out of order or lost: %d bytes stdout, stderr %q", len(res.stdout), res.stderr)
		}
		for i := 1; i < len(res.seqs); i++ {
			if res.seqs[i] <= res.seqs[i-1] {
				t.Fatalf("chunk seq not increasing: %v", res.seqs)
			}
		}
		if ex := res.exits[dev]; ex.GetExitCode() != 3 || res.summary.GetFailed() != 1 {
			t.Fatalf("exit %v summary %v", ex, res.summary)
		}
		e := auditHas(t, r, "admin", "command.run", dev)
		if !strings.Contains(e.Detail, "exit 3") || !strings.Contains(e.Detail, "seq 1 3000") {
			t.Errorf("audit detail %q", e.Detail)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		res, err := runCmd(ctx, cs, &desksidev1.RunCommandRequest{DeviceId: dev,
			Command: &desksidev1.RunCommand{Command: "sleep 60", Timeout: durationpb.New(300 * time.Millisecond)}}, nil)
		if err != nil || !res.exits[dev].GetTimedOut() || res.summary.GetTimedOut() != 1 {
			t.Fatalf("timeout: %v %v", res, err)
		}
	})

	t.Run("output cap", func(t *testing.T) {
		res, err := runCmd(ctx, cs, &desksidev1.RunCommandRequest{DeviceId: dev,
			Command: &desksidev1.RunCommand{Command: "yes | head -c 5000000", MaxOutputBytes: 100000}}, nil)
		if err != nil || !res.exits[dev].GetTruncated() || len(res.stdout) > 100000 || !strings.Contains(res.stderr, "truncated") {
			t.Fatalf("cap: exit %v, %d bytes, stderr %q, err %v", res.exits[dev], len(res.stdout), res.stderr, err)
		}
	})

	t.Run("cancel kills the process tree", func(t *testing.T) {
		marker := fmt.Sprintf("%d.%d", 3000+os.Getpid()%1000, time.Now().Nanosecond()%1000)
		cctx, cancel := context.WithCancel(ctx)
		started := make(chan struct{})
		var once sync.Once
		done := make(chan error, 1)
		go func() {
			_, err := runCmd(cctx, cs, &desksidev1.RunCommandRequest{DeviceId: dev,
				Command: shell(fmt.Sprintf("sleep %s & sleep %s & (sleep %s &) ; echo started; wait", marker, marker, marker))},
				func(out string) {
					if strings.Contains(out, "started") {
						once.Do(func() { close(started) })
					}
				})
			done <- err
		}()
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("command did not start")
		}
		if n := countProcs(t, "sleep "+marker); n != 3 {
			t.Fatalf("%d sleep processes before cancel, want 3", n)
		}
		cancel()
		if err := <-done; status.Code(err) != codes.Canceled {
			t.Fatalf("cancelled stream: %v", err)
		}
		servertest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			if n := countProcs(t, "sleep "+marker); n != 0 {
				return fmt.Errorf("%d processes of the cancelled command remain", n)
			}
			return nil
		})
	})

	t.Run("tier 1 is refused shell, audited", func(t *testing.T) {
		addTechTo(t, r, "t1", "tier-one-password", desksidev1.Role_ROLE_TIER1)
		c1, ctx1 := r.Console(t, "t1", "tier-one-password")
		_, err := runCmd(ctx1, c1, &desksidev1.RunCommandRequest{DeviceId: dev, Command: shell("id")}, nil)
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "RunCommand needs role tier2; you are tier1") {
			t.Fatalf("tier-1 shell: %v", err)
		}
		auditHas(t, r, "t1", "access.denied", "/deskside.v1.ConsoleService/RunCommand")
		_, err = c1.RunAction(ctx1, &desksidev1.RunActionRequest{DeviceId: dev, Action: &desksidev1.RunAction{Action: &desksidev1.RunAction_FlushDns{FlushDns: &desksidev1.FlushDns{}}}})
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("tier-1 action: %v", err)
		}
	})

	t.Run("kill action", func(t *testing.T) {
		p := exec.Command("sleep", "300")
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		waited := make(chan error, 1)
		go func() { waited <- p.Wait() }()
		resp, err := cs.RunAction(ctx, &desksidev1.RunActionRequest{DeviceId: dev, Action: &desksidev1.RunAction{
			Action: &desksidev1.RunAction_KillProcess{KillProcess: &desksidev1.KillProcess{Pid: int32(p.Process.Pid)}}}})
		if err != nil || !resp.GetResult().GetOk() {
			t.Fatalf("kill: %v %v", resp, err)
		}
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			p.Process.Kill()
			t.Fatal("process not killed")
		}
		auditHas(t, r, "admin", "action.run", dev)
	})
}

// countProcs counts processes whose command line is exactly cmdline.
func countProcs(t *testing.T, cmdline string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n := 0
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		if strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ") == cmdline {
			n++
		}
	}
	return n
}

// Fan-out to 50 agents (each its own identity and stream) with per-device
// results, one offline device reported, and queueing for it.
func TestFanOut(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	const n = 50
	ids := map[string]bool{}
	for i := range n {
		_, id := diagAgent(t, r, fmt.Sprintf("fleet-%02d", i))
		ids[id] = true
	}
	off := r.Enroll(t, "fleet-offline")
	cs, ctx := r.Admin(t)
	res, err := runCmd(ctx, cs, &desksidev1.RunCommandRequest{
		Filter:  &desksidev1.ListDevicesRequest{Hostname: "fleet-"},
		Command: shell("echo hi from $(hostname)"), QueueOffline: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := res.summary
	if s.GetDevices() != n+1 || s.GetSucceeded() != n || s.GetQueued() != 1 {
		t.Fatalf("summary %v", s)
	}
	for id := range ids {
		if ex := res.exits[id]; ex == nil || ex.GetExitCode() != 0 {
			t.Errorf("device %s: exit %v", id, ex)
		}
	}
	if o := res.offline[off.DeviceID]; o == nil || !o.GetQueued() {
		t.Fatalf("offline device: %v", res.offline)
	}
	if strings.Count(res.stdout, "hi from") != n {
		t.Errorf("%d outputs, want %d", strings.Count(res.stdout, "hi from"), n)
	}
	// The offline device comes back and runs the queued command.
	log := servertest.DiscardLogger()
	servertest.RunAgent(t, off, servertest.AgentOptions{Inventory: &fakeInventory{inv: sampleInventory()}, Health: fakeSampler{},
		Commands: command.New(command.Options{Logger: log})})
	servertest.CheckFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		evs, _ := r.Srv.Store().ListAudit(context.Background(), store.AuditFilter{})
		for _, e := range evs {
			if e.Action == "command.run.queued" && e.Target == off.DeviceID && strings.Contains(e.Detail, "exit 0") {
				return nil
			}
		}
		return errNotYet
	})
}
