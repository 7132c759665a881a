package server_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/agent/link"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
)

// mtlsAgent is a hand-driven agent stream over real mutual TLS, with the
// device certificate enrollment issued.
type mtlsAgent struct {
	st     *enroll.State
	stream desksidev1.AgentService_ConnectClient
	sendMu sync.Mutex
	nextID uint64
}

// connectAgent opens st's Connect stream and says Hello.
func connectAgent(ctx context.Context, st *enroll.State) (*mtlsAgent, error) {
	cc, err := grpc.NewClient("passthrough:///"+st.Relay, append(link.StreamOptions(), grpc.WithTransportCredentials(credentials.NewTLS(st.TLSConfig())))...)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { cc.Close() })
	s, err := desksidev1.NewAgentServiceClient(cc).Connect(ctx, grpc.MaxCallSendMsgSize(wire.MaxMessageBytes))
	if err != nil {
		return nil, err
	}
	a := &mtlsAgent{st: st, stream: s}
	if _, err := a.send(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Hello{Hello: &desksidev1.Hello{ProtocolVersion: wire.ProtocolVersion, Hostname: "raw"}}}); err != nil {
		if errors.Is(err, io.EOF) {
			// The relay ended the stream (a refusal): its status comes
			// from Recv.
			_, err = s.Recv()
		}
		return nil, err
	}
	m, err := s.Recv()
	if err != nil {
		return nil, err
	}
	if m.GetWelcome() == nil {
		return nil, errors.New("no Welcome")
	}
	return a, nil
}

func (a *mtlsAgent) send(m *desksidev1.AgentMessage) (uint64, error) {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	a.nextID++
	m.Id = a.nextID
	return m.Id, a.stream.Send(m)
}

// samples returns n samples with ids from first on, taken now.
func samples(first uint64, n int) []*desksidev1.HealthSample {
	out := make([]*desksidev1.HealthSample, n)
	now := timestamppb.Now()
	for i := range out {
		out[i] = &desksidev1.HealthSample{Id: first + uint64(i), Time: now, CpuPercent: 50, MemTotalBytes: 16 << 30}
	}
	return out
}

// floodResult is what a flooding agent saw.
type floodResult struct {
	accepted, limited, other int
	sent                     int
	ended                    error // how the stream ended
}

// flood sends health reports of 1,000 samples (and, every tenth message, an
// inventory) as fast as the stream takes them, without waiting for Acks,
// until the relay ends the stream or ctx ends.
func flood(ctx context.Context, a *mtlsAgent) floodResult {
	var r floodResult
	var mu sync.Mutex
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for {
			m, err := a.stream.Recv()
			if err != nil {
				mu.Lock()
				r.ended = err
				mu.Unlock()
				return
			}
			ack := m.GetAck()
			if ack == nil {
				continue
			}
			mu.Lock()
			switch {
			case ack.GetAccepted():
				r.accepted++
			case ack.GetError().GetCode() == desksidev1.AckErrorCode_ACK_ERROR_CODE_RATE_LIMITED:
				r.limited++
			default:
				r.other++
			}
			mu.Unlock()
		}
	}()
	inv := &desksidev1.Inventory{Hostname: "flood", Os: &desksidev1.OperatingSystem{Name: "Linux"}}
	next := uint64(1)
	sent := 0
	for ctx.Err() == nil {
		var m *desksidev1.AgentMessage
		if sent%10 == 9 {
			m = &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Inventory{Inventory: &desksidev1.InventoryReport{Inventory: inv}}}
		} else {
			m = &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Health{Health: &desksidev1.HealthReport{Samples: samples(next, wire.MaxHealthBatch)}}}
			next += wire.MaxHealthBatch
		}
		if _, err := a.send(m); err != nil {
			break
		}
		sent++
	}
	a.sendMu.Lock()
	a.stream.CloseSend() // the relay ends the stream, which ends the receiver
	a.sendMu.Unlock()
	<-recvDone
	r.sent = sent
	return r
}

// steadyAgent sends one sample per interval and records each Ack's latency
// until stop is closed; every report must be accepted.
type steadyAgent struct {
	mu        sync.Mutex
	latencies []time.Duration
	refused   atomic.Int64
}

func (s *steadyAgent) run(a *mtlsAgent, interval time.Duration, stop <-chan struct{}) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for id := uint64(1); ; id++ {
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
		start := time.Now()
		ref, err := a.send(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Health{Health: &desksidev1.HealthReport{Samples: samples(id, 1)}}})
		if err != nil {
			return err
		}
		m, err := a.stream.Recv()
		if err != nil {
			return err
		}
		if m.GetRefId() != ref || m.GetAck() == nil {
			return errors.New("steady agent: reply is not the Ack of its report")
		}
		if !m.GetAck().GetAccepted() {
			s.refused.Add(1)
		}
		s.mu.Lock()
		s.latencies = append(s.latencies, time.Since(start))
		s.mu.Unlock()
	}
}

// since returns the latencies recorded from index i on.
func (s *steadyAgent) since(i int) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.latencies[i:])
}

func (s *steadyAgent) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.latencies)
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	d = slices.Clone(d)
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// TestFloodingAgentIsLimited attacks the relay the way the issue found:
// one device sends health and inventory as fast as its stream takes them.
// It gets RATE_LIMITED refusals, its stored rows stay within the burst and
// the sustained rate, one audit record says so, and it is disconnected and
// refused at reconnect; meanwhile another device's reports keep being
// accepted (their Ack latency is logged, not asserted).
func TestFloodingAgentIsLimited(t *testing.T) {
	const (
		interval  = 200 * time.Millisecond
		rowBurst  = 3000
		perHour   = 4 * 3600 * 5 // the default: 4 × the sampling rate
		disconnAt = 100
	)
	r := servertest.Start(t, servertest.Options{Modify: func(c *server.Config) {
		c.HealthInterval = interval
		c.Ingest.HealthRowBurst = rowBurst
		c.Ingest.HealthReportBurst = 50
		c.Ingest.DisconnectAfter = disconnAt
		c.Ingest.Pause = 10 * time.Millisecond
	}})
	sts := r.EnrollMany(t, 2, func(i int) string { return []string{"normal", "flooder"}[i] })
	normalSt, floodSt := sts[0], sts[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	normal, err := connectAgent(ctx, normalSt)
	if err != nil {
		t.Fatal(err)
	}
	steady := &steadyAgent{}
	stop := make(chan struct{})
	steadyErr := make(chan error, 1)
	go func() { steadyErr <- steady.run(normal, interval, stop) }()
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if steady.count() < 5 {
			return errors.New("the normal agent has not had 5 Acks yet")
		}
		return nil
	})
	before := steady.count()

	flooder, err := connectAgent(ctx, floodSt)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
	res := flood(fctx, flooder)
	fcancel()
	elapsed := time.Since(start)
	during := steady.count()
	// The normal agent keeps being served after the flood as well.
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if steady.count() < during+3 {
			return errors.New("the normal agent's Acks stopped")
		}
		return nil
	})
	close(stop)
	if err := <-steadyErr; err != nil {
		t.Fatalf("normal agent: %v", err)
	}
	t.Logf("flooder: sent %d reports in %s: %d accepted, %d rate-limited, %d other; stream ended: %v",
		res.sent, elapsed.Round(time.Millisecond), res.accepted, res.limited, res.other, res.ended)
	base, flooded := steady.since(0)[:before], steady.since(before)
	t.Logf("normal agent Ack latency: before the flood p50 %s p99 %s (%d); during and after p50 %s p99 %s max %s (%d)",
		percentile(base, .5), percentile(base, .99), len(base),
		percentile(flooded, .5), percentile(flooded, .99), slices.Max(flooded), len(flooded))

	if res.limited == 0 {
		t.Fatal("the flooder was never refused")
	}
	if n := steady.refused.Load(); n != 0 {
		t.Errorf("the normal agent had %d reports refused", n)
	}
	if status.Code(res.ended) != codes.ResourceExhausted && !errors.Is(res.ended, io.EOF) && status.Code(res.ended) != codes.Unavailable {
		t.Errorf("the flooder's stream ended with %v, want its disconnection", res.ended)
	}
	if fctx.Err() != nil && res.ended == nil {
		t.Error("the flooder was never disconnected")
	}
	// Reconnecting at once is refused.
	_, err = connectAgent(ctx, floodSt)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "reconnect in") {
		t.Errorf("flooder reconnect: %v, want ResourceExhausted naming when it may reconnect", err)
	}

	pts, err := r.Srv.Store().HealthRange(ctx, floodSt.DeviceID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	bound := rowBurst + int(elapsed.Seconds()*perHour/3600) + wire.MaxHealthBatch
	t.Logf("flooder rows stored: %d (bound %d; it sent %d)", len(pts), bound, res.sent*wire.MaxHealthBatch)
	if len(pts) > bound {
		t.Errorf("the flooder stored %d rows, more than the burst and the sustained rate allow (%d)", len(pts), bound)
	}

	events, err := r.Srv.Store().ListAudit(ctx, store.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range events {
		if e.Target == floodSt.DeviceID || e.Target == normalSt.DeviceID {
			count[e.Target+" "+e.Action]++
		}
	}
	if n := count[floodSt.DeviceID+" device.rate_limited"]; n != 1 {
		t.Errorf("%d device.rate_limited records for the flooder, want 1 per window: %v", n, count)
	}
	if n := count[floodSt.DeviceID+" device.disconnected"]; n != 1 {
		t.Errorf("%d device.disconnected records for the flooder, want 1: %v", n, count)
	}
	if n := count[normalSt.DeviceID+" device.rate_limited"]; n != 0 {
		t.Errorf("the normal agent was audited as rate-limited")
	}
}

// hostileText is what a hostile agent writes into free-text answers: a
// terminal escape that would clear a technician's screen and retitle it,
// a bidi override, a NUL and 100 KB of padding (invalid UTF-8 does not
// get through protobuf's decoding of string fields).
var hostileText = "\x1b[2J\x1b]0;pwned\x07evil\u202e\x00" + strings.Repeat("A", 100<<10)

// answerHostile answers every relay request with hostile free text until
// the stream ends: CommandExit.error, RequestError (for actions) and
// DesktopEnded.reason.
func answerHostile(a *mtlsAgent) {
	for {
		m, err := a.stream.Recv()
		if err != nil {
			return
		}
		var body *desksidev1.AgentMessage
		switch b := m.GetBody().(type) {
		case *desksidev1.RelayMessage_RunCommand:
			body = &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_CommandExit{CommandExit: &desksidev1.CommandExit{ExitCode: 1, Error: hostileText}}}
		case *desksidev1.RelayMessage_RunAction:
			body = &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Error{Error: &desksidev1.RequestError{Message: hostileText}}}
		case *desksidev1.RelayMessage_StartDesktop:
			body = &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_DesktopEnded{DesktopEnded: &desksidev1.DesktopEnded{
				SessionId: b.StartDesktop.GetSessionId(), Reason: hostileText}}}
		default:
			continue
		}
		body.RefId = m.GetId()
		if _, err := a.send(body); err != nil {
			return
		}
	}
}

// TestAgentTextsCleanedInAudit: free text a hostile agent puts in its
// answers reaches the audit log and the console cleaned and capped.
func TestAgentTextsCleanedInAudit(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	st := r.Enroll(t, "hostile")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := connectAgent(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	go answerHostile(a)
	cs, actx := r.Admin(t)

	var seen []string // what the console got
	cmd, err := cs.RunCommand(actx, &desksidev1.RunCommandRequest{DeviceId: st.DeviceID, Command: &desksidev1.RunCommand{Command: "true"}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := cmd.Recv()
		if err != nil {
			break
		}
		if e := m.GetExit(); e != nil {
			seen = append(seen, e.GetError())
		}
	}
	res, err := cs.RunAction(actx, &desksidev1.RunActionRequest{DeviceId: st.DeviceID, Action: &desksidev1.RunAction{Action: &desksidev1.RunAction_FlushDns{FlushDns: &desksidev1.FlushDns{}}}})
	if err != nil {
		seen = append(seen, err.Error())
	} else {
		seen = append(seen, res.GetResult().GetMessage())
	}
	if _, err := cs.SetDevicePolicy(actx, &desksidev1.SetDevicePolicyRequest{DeviceId: st.DeviceID, UnattendedAllowed: true}); err != nil {
		t.Fatal(err)
	}
	ds, err := cs.StartDesktopSession(actx, &desksidev1.StartDesktopSessionRequest{DeviceId: st.DeviceID})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := ds.Recv()
		if err != nil {
			break
		}
		if e := m.GetEnded(); e != nil {
			seen = append(seen, e.GetReason())
		}
	}
	if len(seen) != 3 {
		t.Fatalf("the console got %d of the 3 hostile answers: %q", len(seen), seen)
	}

	events, err := r.Srv.Store().ListAudit(ctx, store.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, e := range events {
		if e.Target != st.DeviceID {
			continue
		}
		actions[e.Action] = true
		seen = append(seen, e.Detail)
	}
	for _, want := range []string{"command.run", "action.run", "desktop.end"} {
		if !actions[want] {
			t.Errorf("no %s audit record: %v", want, actions)
		}
	}
	for _, s := range seen {
		if strings.ContainsAny(s, "\x1b\x00\x07\u202e") || strings.Contains(s, "pwned") || !utf8.ValidString(s) {
			t.Errorf("agent text not cleaned: %q", s[:min(len(s), 80)])
		}
		if len(s) > 4<<10 {
			t.Errorf("agent text not capped: %d bytes", len(s))
		}
	}
}
