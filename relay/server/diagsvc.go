package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/bus"
	"github.com/deskside/deskside/relay/endpointtrust"
	"github.com/deskside/deskside/relay/store"
)

// Limits on technician-supplied commands.
const (
	maxCommandBytes   = 64 << 10
	maxScriptBytes    = 1 << 20
	maxCommandTimeout = 24 * time.Hour
	maxOutputCap      = 100 << 20
	defaultQueueTTL   = 24 * time.Hour
	maxQueueTTL       = 7 * 24 * time.Hour
	maxFanout         = 10000
	// fanoutParallel is how many devices of one fan-out run at once. A
	// fan-out takes about ceil(devices / fanoutParallel) times its
	// command's duration: at 512, a 10 s script on 10,000 devices would
	// take about 200 s. An exchange in flight costs a goroutine and a
	// small queue, a few KB (docs/BENCHMARKS.md has the relay's memory
	// during a fan-out to 10,000).
	fanoutParallel = 4096
	maxCheckBudget = 60 * time.Second
)

var runAsPattern = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}\$?$`)

// checkConfig returns the check settings of a device's group.
func (s *Server) checkConfig(ctx context.Context, d store.Device) (*desksidev1.CheckConfig, error) {
	cfg := &desksidev1.CheckConfig{}
	if d.Group == "" {
		return cfg, nil
	}
	b, err := s.store.GetGroupSettings(ctx, d.Group)
	if errors.Is(err, store.ErrNotFound) {
		return cfg, nil
	} else if err != nil {
		return nil, storeErr(err)
	}
	if err := proto.Unmarshal(b, cfg); err != nil {
		return nil, status.Errorf(codes.DataLoss, "settings of group %q are unreadable: %v", d.Group, err)
	}
	return cfg, nil
}

// RunChecks implements ConsoleService.RunChecks.
func (c *consoleService) RunChecks(ctx context.Context, req *desksidev1.RunChecksRequest) (*desksidev1.RunChecksResponse, error) {
	d, err := c.device(ctx, req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	budget := 5 * time.Second
	if req.GetBudget() != nil {
		budget = req.GetBudget().AsDuration()
	}
	if budget <= 0 || budget > maxCheckBudget {
		return nil, status.Errorf(codes.InvalidArgument, "budget %s must be between 1s and %s", budget, maxCheckBudget)
	}
	cfg, err := c.s.checkConfig(ctx, d)
	if err != nil {
		return nil, err
	}
	who := callerFrom(ctx).Name
	checks := strings.Join(req.GetChecks(), ",")
	if checks == "" {
		checks = "all (triage)"
	}
	rctx, cancel := context.WithTimeout(ctx, budget+10*time.Second)
	defer cancel()
	m, err := bus.Request(rctx, c.s.bus, d.ID, &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_RunChecks{RunChecks: &desksidev1.RunChecks{
		Checks: req.GetChecks(), Config: cfg, Budget: durationpb.New(budget),
	}}})
	if err != nil {
		c.s.audit(ctx, who, "checks.run", d.ID, fmt.Sprintf("checks %s: %v", checks, err))
		return nil, agentErr(d.ID, err)
	}
	rep := m.GetCheckReport()
	if rep == nil {
		if e := m.GetError(); e != nil {
			return nil, status.Errorf(codes.Aborted, "device %s: %s", d.ID, wire.CleanString(e.GetMessage(), 1024))
		}
		return nil, status.Errorf(codes.Internal, "device %s answered with %T, not a report", d.ID, m.GetBody())
	}
	if err := wire.DefaultCaps.Sanitize(rep.ProtoReflect()); err != nil {
		return nil, status.Errorf(codes.DataLoss, "device %s sent a report the relay refuses: %v", d.ID, err)
	}
	data, _ := proto.Marshal(rep)
	now := c.s.cfg.Now()
	id, err := c.s.store.AddCheckReport(ctx, store.CheckReport{DeviceID: d.ID, Time: now, Technician: who, Overall: int(rep.GetOverall()), Data: data})
	if err != nil {
		return nil, storeErr(err)
	}
	c.s.audit(ctx, who, "checks.run", d.ID, fmt.Sprintf("checks %s: overall %s, report %d", checks, checkStatusName(rep.GetOverall()), id))
	return &desksidev1.RunChecksResponse{Report: rep, ReportId: id}, nil
}

func checkStatusName(s desksidev1.CheckStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "CHECK_STATUS_"))
}

// ListCheckReports implements ConsoleService.ListCheckReports.
func (c *consoleService) ListCheckReports(ctx context.Context, req *desksidev1.ListCheckReportsRequest) (*desksidev1.ListCheckReportsResponse, error) {
	d, err := c.device(ctx, req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	limit := clampLimit(req.GetLimit(), 50, 1000)
	reps, err := c.s.store.ListCheckReports(ctx, d.ID, limit)
	if err != nil {
		return nil, storeErr(err)
	}
	resp := &desksidev1.ListCheckReportsResponse{}
	for _, r := range reps {
		rep := new(desksidev1.CheckReport)
		if err := proto.Unmarshal(r.Data, rep); err != nil {
			return nil, status.Errorf(codes.DataLoss, "stored report %d is unreadable: %v", r.ID, err)
		}
		resp.Reports = append(resp.Reports, &desksidev1.StoredCheckReport{Id: r.ID, Time: timestamppb.New(r.Time), Technician: r.Technician, Report: rep})
	}
	return resp, nil
}

// describeAction is the audit text of an action.
func describeAction(a *desksidev1.RunAction) (string, error) {
	switch x := a.GetAction().(type) {
	case *desksidev1.RunAction_KillProcess:
		if x.KillProcess.GetPid() <= 1 {
			return "", status.Error(codes.InvalidArgument, "kill: pid must be greater than 1")
		}
		return fmt.Sprintf("kill pid %d", x.KillProcess.GetPid()), nil
	case *desksidev1.RunAction_RestartService:
		n := x.RestartService.GetName()
		if n == "" || len(n) > 128 {
			return "", status.Error(codes.InvalidArgument, "restart: a service name of 1 to 128 characters is required")
		}
		return fmt.Sprintf("restart service %q", n), nil
	case *desksidev1.RunAction_FlushDns:
		return "flush DNS cache", nil
	case *desksidev1.RunAction_Reboot:
		d := x.Reboot.GetDelay().AsDuration()
		return fmt.Sprintf("reboot in %s (%q)", d, wire.CleanString(x.Reboot.GetMessage(), 200)), nil
	}
	return "", status.Error(codes.InvalidArgument, "no action given (kill, restart, flush-dns or reboot)")
}

// RunAction implements ConsoleService.RunAction.
func (c *consoleService) RunAction(ctx context.Context, req *desksidev1.RunActionRequest) (*desksidev1.RunActionResponse, error) {
	d, err := c.device(ctx, req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	what, err := describeAction(req.GetAction())
	if err != nil {
		return nil, err
	}
	ec, err := envelopeCall(ctx)
	if err != nil {
		return nil, err
	}
	who := callerFrom(ctx).Name
	if r := endpointRefusal(d, endpointtrust.Actions); r != "" {
		c.s.audit(ctx, who, "action.refused", d.ID, what+": "+r)
		return &desksidev1.RunActionResponse{Result: &desksidev1.ActionResult{Ok: false, Message: r}}, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	m, err := bus.Request(rctx, c.s.bus, d.ID, c.s.signedCall(ctx, ec.GetEnvelope(), nil).wrap(&desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_RunAction{RunAction: req.GetAction()}}, d.ID))
	if err != nil {
		c.s.audit(ctx, who, "action.run", d.ID, fmt.Sprintf("%s: not delivered: %v", what, err))
		return nil, agentErr(d.ID, err)
	}
	res := m.GetActionResult()
	if res == nil {
		msg := "agent sent no result"
		if e := m.GetError(); e != nil {
			msg = e.GetMessage()
		}
		res = &desksidev1.ActionResult{Ok: false, Message: msg}
	}
	res.Message = wire.CleanString(res.GetMessage(), 2048)
	c.s.audit(ctx, who, "action.run", d.ID, fmt.Sprintf("%s: ok=%v %s", what, res.GetOk(), res.GetMessage()))
	return &desksidev1.RunActionResponse{Result: res}, nil
}

// commandText is the audit text of a command: the exact command line, or
// the script's SHA-256.
func commandText(rc *desksidev1.RunCommand) string {
	if rc.GetScript() != "" {
		sum := sha256.Sum256([]byte(rc.GetScript()))
		return "script sha256:" + hex.EncodeToString(sum[:])
	}
	return "command " + fmt.Sprintf("%q", rc.GetCommand())
}

func validateCommand(rc *desksidev1.RunCommand) error {
	switch {
	case rc == nil || (rc.GetCommand() == "") == (rc.GetScript() == ""):
		return status.Error(codes.InvalidArgument, "give exactly one of a command line or a script")
	case len(rc.GetCommand()) > maxCommandBytes:
		return status.Errorf(codes.InvalidArgument, "command line is %d bytes; the limit is %d", len(rc.GetCommand()), maxCommandBytes)
	case len(rc.GetScript()) > maxScriptBytes:
		return status.Errorf(codes.InvalidArgument, "script is %d bytes; the limit is %d", len(rc.GetScript()), maxScriptBytes)
	case rc.GetTimeout() != nil && (rc.GetTimeout().AsDuration() <= 0 || rc.GetTimeout().AsDuration() > maxCommandTimeout):
		return status.Errorf(codes.InvalidArgument, "timeout must be between 1s and %s", maxCommandTimeout)
	case rc.GetMaxOutputBytes() > maxOutputCap:
		return status.Errorf(codes.InvalidArgument, "output cap must be at most %d bytes", maxOutputCap)
	case rc.GetRunAs() != "" && !runAsPattern.MatchString(rc.GetRunAs()):
		return status.Errorf(codes.InvalidArgument, "run_as %q is not a valid user name", rc.GetRunAs())
	}
	return nil
}

// RunCommand implements ConsoleService.RunCommand.
func (c *consoleService) RunCommand(req *desksidev1.RunCommandRequest, stream desksidev1.ConsoleService_RunCommandServer) error {
	ctx := stream.Context()
	rc := req.GetCommand()
	if err := validateCommand(rc); err != nil {
		return err
	}
	who := callerFrom(ctx).Name
	var targets []store.Device
	switch {
	case req.GetDeviceId() != "" && req.GetFilter() != nil:
		return status.Error(codes.InvalidArgument, "give a device id or a filter, not both")
	case req.GetDeviceId() != "":
		d, err := c.device(ctx, req.GetDeviceId())
		if err != nil {
			return err
		}
		targets = []store.Device{d}
	case req.GetFilter() != nil:
		fr := proto.Clone(req.GetFilter()).(*desksidev1.ListDevicesRequest)
		fr.PageSize = maxPageSize
		scope := c.s.deviceScope(ctx)
		for {
			f, err := deviceFilter(fr, scope)
			if err != nil {
				return err
			}
			devs, _, err := c.s.store.ListDevices(ctx, f)
			if err != nil {
				return storeErr(err)
			}
			targets = append(targets, devs...)
			if len(targets) > maxFanout {
				return status.Errorf(codes.InvalidArgument, "the filter matches more than %d devices; narrow it", maxFanout)
			}
			if len(devs) < f.Limit {
				break
			}
			fr.PageToken = nextPageToken(f, devs[len(devs)-1])
		}
		if len(targets) == 0 {
			return status.Error(codes.NotFound, "no device matches the filter")
		}
	default:
		return status.Error(codes.InvalidArgument, "give a device id or a filter (deskside run DEVICE -- CMD, or --filter)")
	}
	if len(targets) > 1 {
		if err := c.s.needRole(ctx, desksidev1.Role_ROLE_TIER3, "filter", fmt.Sprintf("a command on %d devices at once", len(targets))); err != nil {
			return err
		}
	}
	ttl := defaultQueueTTL
	if req.GetQueueTtl() != nil {
		ttl = req.GetQueueTtl().AsDuration()
	}
	if req.GetQueueOffline() && (ttl <= 0 || ttl > maxQueueTTL) {
		return status.Errorf(codes.InvalidArgument, "queue_ttl must be between 1s and %s", maxQueueTTL)
	}

	var (
		sendMu sync.Mutex
		sum    = &desksidev1.CommandSummary{Devices: uint32(len(targets))}
	)
	send := func(r *desksidev1.RunCommandResponse) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(r)
	}
	count := func(f func()) {
		sendMu.Lock()
		f()
		sendMu.Unlock()
	}
	text := commandText(rc)
	ec, err := envelopeCall(ctx)
	if err != nil {
		return err
	}
	var tree *envelope.Tree
	if len(ec.GetDevices()) > 0 {
		tree = envelope.NewTree(ec.GetDevices())
	}
	signed := c.s.signedCall(ctx, ec.GetEnvelope(), tree)
	sem := make(chan struct{}, fanoutParallel)
	var wg sync.WaitGroup
	for _, d := range targets {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.runOne(ctx, who, text, d, req, signed, ttl, send, count, sum)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	return send(&desksidev1.RunCommandResponse{Event: &desksidev1.RunCommandResponse_Summary{Summary: sum}})
}

// runOne runs the command on one device, forwarding its events, and
// audits the outcome.
func (c *consoleService) runOne(ctx context.Context, who, text string, d store.Device, req *desksidev1.RunCommandRequest, signed signedCall, ttl time.Duration,
	send func(*desksidev1.RunCommandResponse) error, count func(func()), sum *desksidev1.CommandSummary) {
	s := c.s
	if r := endpointRefusal(d, endpointtrust.Commands); r != "" {
		s.audit(ctx, who, "command.refused", d.ID, text+": "+r)
		count(func() { sum.Failed++ })
		send(&desksidev1.RunCommandResponse{DeviceId: d.ID, Hostname: d.Hostname, Event: &desksidev1.RunCommandResponse_Exit{Exit: &desksidev1.CommandExit{ExitCode: -1, Error: r}}})
		return
	}
	start := s.cfg.Now()
	var exit *desksidev1.CommandExit
	var outBytes uint64
	err := s.bus.Stream(ctx, d.ID, signed.wrap(&desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_RunCommand{RunCommand: req.GetCommand()}}, d.ID),
		func(m *desksidev1.AgentMessage) bool {
			switch b := m.GetBody().(type) {
			case *desksidev1.AgentMessage_CommandOutput:
				outBytes += uint64(len(b.CommandOutput.GetData()))
				if send(&desksidev1.RunCommandResponse{DeviceId: d.ID, Hostname: d.Hostname, Event: &desksidev1.RunCommandResponse_Output{Output: b.CommandOutput}}) != nil {
					return true // the console is gone; ctx ends the command
				}
				return false
			case *desksidev1.AgentMessage_CommandExit:
				exit = b.CommandExit
			case *desksidev1.AgentMessage_Error:
				exit = &desksidev1.CommandExit{ExitCode: -1, Error: wire.CleanString(b.Error.GetMessage(), 1024)}
			default:
				exit = &desksidev1.CommandExit{ExitCode: -1, Error: fmt.Sprintf("agent answered with %T", b)}
			}
			return true
		})
	switch {
	case errors.Is(err, bus.ErrNoRoute):
		off := &desksidev1.DeviceOffline{}
		if req.GetQueueOffline() {
			data, _ := proto.Marshal(req.GetCommand())
			exp := s.cfg.Now().Add(ttl)
			if _, qerr := s.store.QueueCommand(context.WithoutCancel(ctx), store.QueuedCommand{DeviceID: d.ID, Technician: who, Created: s.cfg.Now(), Expires: exp, Data: data}); qerr == nil {
				off.Queued, off.QueuedUntil = true, timestamppb.New(exp)
				s.audit(ctx, who, "command.queue", d.ID, fmt.Sprintf("%s until %s", text, exp.UTC().Format(time.RFC3339)))
			} else {
				s.log.Error("queue command failed", logKeyDevice, d.ID, logKeyError, qerr)
			}
		}
		count(func() {
			if off.Queued {
				sum.Queued++
			} else {
				sum.Offline++
			}
		})
		send(&desksidev1.RunCommandResponse{DeviceId: d.ID, Hostname: d.Hostname, Event: &desksidev1.RunCommandResponse_Offline{Offline: off}})
		return
	case err != nil && exit == nil:
		exit = &desksidev1.CommandExit{ExitCode: -1, OutputBytes: outBytes}
		if ctx.Err() != nil {
			exit.Canceled = true
		} else {
			exit.Error = status.Convert(agentErr(d.ID, err)).Message()
		}
	}
	count(func() {
		switch {
		case exit.GetCanceled():
			sum.Canceled++
		case exit.GetTimedOut():
			sum.TimedOut++
		case exit.GetExitCode() == 0 && exit.GetError() == "":
			sum.Succeeded++
		default:
			sum.Failed++
		}
	})
	s.audit(ctx, who, "command.run", d.ID, fmt.Sprintf("%s: exit %d, timed_out=%v canceled=%v truncated=%v, %d bytes of output, %s%s",
		text, exit.GetExitCode(), exit.GetTimedOut(), exit.GetCanceled(), exit.GetTruncated(), max(exit.GetOutputBytes(), outBytes),
		s.cfg.Now().Sub(start).Round(time.Millisecond), errSuffix(exit.GetError())))
	if ctx.Err() == nil {
		send(&desksidev1.RunCommandResponse{DeviceId: d.ID, Hostname: d.Hostname, Event: &desksidev1.RunCommandResponse_Exit{Exit: exit}})
	}
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ", error: " + e
}

// runQueued runs the commands queued for a device that just connected;
// their outcome goes to the audit log.
func (s *Server) runQueued(ctx context.Context, id string) {
	qs, err := s.store.TakeQueuedCommands(ctx, id, s.cfg.Now())
	if err != nil {
		if ctx.Err() != nil {
			// The agent's stream ended first (a reconnect storm does this
			// by the thousand): nothing was taken, and the next connection
			// reads the queue again.
			return
		}
		s.log.Error("read queued commands failed", logKeyDevice, id, logKeyError, err)
		return
	}
	for _, q := range qs {
		rc := new(desksidev1.RunCommand)
		if err := proto.Unmarshal(q.Data, rc); err != nil {
			s.log.Error("queued command unreadable", logKeyDevice, id, logKeyError, err)
			continue
		}
		var exit *desksidev1.CommandExit
		var out uint64
		start := s.cfg.Now()
		err := s.bus.Stream(ctx, id, &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_RunCommand{RunCommand: rc}}, func(m *desksidev1.AgentMessage) bool {
			if o := m.GetCommandOutput(); o != nil {
				out += uint64(len(o.GetData()))
				return false
			}
			exit = m.GetCommandExit()
			if exit == nil {
				exit = &desksidev1.CommandExit{ExitCode: -1, Error: wire.CleanString(m.GetError().GetMessage(), 1024)}
			}
			return true
		})
		if exit == nil {
			exit = &desksidev1.CommandExit{ExitCode: -1, Error: fmt.Sprint(err)}
		}
		s.audit(ctx, q.Technician, "command.run.queued", id, fmt.Sprintf("%s (queued %s): exit %d, timed_out=%v truncated=%v, %d bytes of output, %s%s",
			commandText(rc), q.Created.UTC().Format(time.RFC3339), exit.GetExitCode(), exit.GetTimedOut(), exit.GetTruncated(), max(exit.GetOutputBytes(), out),
			s.cfg.Now().Sub(start).Round(time.Millisecond), errSuffix(exit.GetError())))
	}
}

// SetDeviceGroup implements ConsoleService.SetDeviceGroup.
func (c *consoleService) SetDeviceGroup(ctx context.Context, req *desksidev1.SetDeviceGroupRequest) (*desksidev1.SetDeviceGroupResponse, error) {
	d, err := c.device(ctx, req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	// Trimmed as technicians' groups are (technicians.CleanGroups), so
	// that " lab" on a device matches "lab" on an account.
	g := strings.TrimSpace(wire.CleanString(req.GetGroup(), 64))
	if err := c.s.store.SetDeviceGroup(ctx, d.ID, g); err != nil {
		return nil, storeErr(err)
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "device.group", d.ID, fmt.Sprintf("%q → %q", d.Group, g))
	c.s.deviceChanged(ctx, d.ID)
	return &desksidev1.SetDeviceGroupResponse{}, nil
}

// SetGroupCheckConfig implements ConsoleService.SetGroupCheckConfig.
func (c *consoleService) SetGroupCheckConfig(ctx context.Context, req *desksidev1.SetGroupCheckConfigRequest) (*desksidev1.SetGroupCheckConfigResponse, error) {
	g := wire.CleanString(req.GetGroup(), 64)
	if g == "" {
		return nil, status.Error(codes.InvalidArgument, "group name is required")
	}
	cfg := req.GetConfig()
	if cfg == nil {
		cfg = &desksidev1.CheckConfig{}
	}
	if err := wire.DefaultCaps.Sanitize(cfg.ProtoReflect()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "config: %v", err)
	}
	for name, v := range map[string]float64{
		"disk_warn_percent": cfg.GetDiskWarnPercent(), "disk_fail_percent": cfg.GetDiskFailPercent(),
		"inode_warn_percent": cfg.GetInodeWarnPercent(), "inode_fail_percent": cfg.GetInodeFailPercent(),
		"memory_warn_percent": cfg.GetMemoryWarnPercent(), "memory_fail_percent": cfg.GetMemoryFailPercent(),
		"swap_warn_percent": cfg.GetSwapWarnPercent(),
	} {
		if v < 0 || v > 100 {
			return nil, status.Errorf(codes.InvalidArgument, "%s must be between 0 and 100", name)
		}
	}
	data, _ := proto.Marshal(cfg)
	if err := c.s.store.PutGroupSettings(ctx, g, data); err != nil {
		return nil, storeErr(err)
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "group.check_config", g, fmt.Sprintf("%v", cfg))
	return &desksidev1.SetGroupCheckConfigResponse{}, nil
}
