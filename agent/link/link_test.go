package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/agent/spool"
	"github.com/deskside/deskside/internal/testpoll"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

// wait bounds every wait of these tests for a message or a state.
const wait = 10 * time.Second

// fakeRelay is the relay side of AgentService.Connect, driven by the
// test: each stream the agent opens is handed over on streams.
type fakeRelay struct {
	desksidev1.UnimplementedAgentServiceServer
	streams chan *relayStream
}

// relayStream is one Connect stream as the relay sees it.
type relayStream struct {
	st  desksidev1.AgentService_ConnectServer
	in  chan *desksidev1.AgentMessage // what the agent sent; closed when its side ends
	end chan error                    // ends the stream with this status
}

func (f *fakeRelay) Connect(st desksidev1.AgentService_ConnectServer) error {
	rs := &relayStream{st: st, in: make(chan *desksidev1.AgentMessage, 64), end: make(chan error, 1)}
	go func() {
		defer close(rs.in)
		for {
			m, err := st.Recv()
			if err != nil {
				return
			}
			select {
			case rs.in <- m:
			case <-st.Context().Done():
				return
			}
		}
	}()
	select {
	case f.streams <- rs:
	case <-st.Context().Done():
		return st.Context().Err()
	}
	select {
	case err := <-rs.end:
		return err
	case <-st.Context().Done():
		return st.Context().Err()
	}
}

// next returns the agent's next message, failing the test after wait.
func (rs *relayStream) next(t *testing.T) *desksidev1.AgentMessage {
	t.Helper()
	select {
	case m, ok := <-rs.in:
		if !ok {
			t.Fatal("the agent closed the stream")
		}
		return m
	case <-time.After(wait):
		t.Fatalf("no message from the agent within %s", wait)
		return nil
	}
}

func (rs *relayStream) send(t *testing.T, m *desksidev1.RelayMessage) {
	t.Helper()
	if err := rs.st.Send(m); err != nil {
		t.Fatalf("relay send: %v", err)
	}
}

// welcome reads Hello and answers Welcome.
func (rs *relayStream) welcome(t *testing.T, w *desksidev1.Welcome) *desksidev1.Hello {
	t.Helper()
	m := rs.next(t)
	h := m.GetHello()
	if h == nil {
		t.Fatalf("first message %T, want Hello", m.GetBody())
	}
	rs.send(t, &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_Welcome{Welcome: w}})
	return h
}

func (rs *relayStream) ack(t *testing.T, ref uint64, a *desksidev1.Ack) {
	t.Helper()
	rs.send(t, &desksidev1.RelayMessage{RefId: ref, Body: &desksidev1.RelayMessage_Ack{Ack: a}})
}

// connected reads Hello, answers Welcome, and reads and accepts the
// inventory the agent sends on start.
func (rs *relayStream) connected(t *testing.T) {
	t.Helper()
	rs.welcome(t, &desksidev1.Welcome{ProtocolVersion: wire.ProtocolVersion, DeviceId: "dev-test"})
	inv := rs.next(t)
	if inv.GetInventory() == nil {
		t.Fatalf("after Welcome: %T, want the inventory", inv.GetBody())
	}
	rs.ack(t, inv.GetId(), &desksidev1.Ack{Accepted: true})
}

type fakeInventory struct{ reads atomic.Int32 }

func (f *fakeInventory) Read(context.Context) (*desksidev1.Inventory, error) {
	f.reads.Add(1)
	return &desksidev1.Inventory{Hostname: "test-host", CollectedAt: timestamppb.Now()}, nil
}

type fakeSampler struct{}

func (fakeSampler) Sample(context.Context) (*desksidev1.HealthSample, error) {
	return &desksidev1.HealthSample{Time: timestamppb.Now(), CpuPercent: 1}, nil
}

// fakeChecks answers RunChecks with report.
type fakeChecks struct{ report *desksidev1.CheckReport }

func (f fakeChecks) Run(context.Context, *desksidev1.RunChecks) *desksidev1.CheckReport {
	return f.report
}

// logRecorder keeps the messages and "err" attributes logged.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	line := rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			line += ": " + a.Value.String()
		}
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, line)
	r.mu.Unlock()
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) find(substr string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l, substr) {
			return nil
		}
	}
	return fmt.Errorf("no log line contains %q: %q", substr, r.lines)
}

// harness is a Link connected over an in-memory listener to a fakeRelay
// whose gRPC server can vanish and come back.
type harness struct {
	t     *testing.T
	relay *fakeRelay
	lis   atomic.Pointer[bufconn.Listener]
	srv   *grpc.Server
	spool *spool.Spool
	inv   *fakeInventory
	logs  *logRecorder
	link  *Link
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	baseline := runtime.NumGoroutine()
	h := &harness{t: t, relay: &fakeRelay{streams: make(chan *relayStream, 4)}, inv: &fakeInventory{}, logs: &logRecorder{}}
	sp, err := spool.Open(t.TempDir(), 100)
	if err != nil {
		t.Fatal(err)
	}
	h.spool = sp
	h.serve()
	cfg := Config{
		State: &enroll.State{Relay: "bufconn:1"}, Spool: sp, Inventory: h.inv, Health: fakeSampler{},
		HealthInterval: time.Hour, Backoff: Backoff{Base: 5 * time.Millisecond, Multiplier: 1, Max: 5 * time.Millisecond},
		Hostname: "test-host", Version: "v-test", Logger: slog.New(h.logs),
	}
	if mod != nil {
		mod(&cfg)
	}
	h.link, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.link.transport = []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return h.lis.Load().DialContext(ctx) }),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.link.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Fatal("Run did not return after its context was cancelled")
		}
		h.srv.Stop()
		sp.Close()
		// Nothing the link started may outlive Run.
		testpoll.CheckFor(t, wait, 10*time.Millisecond, func() error {
			if n := runtime.NumGoroutine(); n > baseline {
				return fmt.Errorf("%d goroutines after Run returned, %d before it started", n, baseline)
			}
			return nil
		})
	})
	return h
}

// serve starts a gRPC server on a new in-memory listener, which the link
// dials from then on.
func (h *harness) serve() {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(wire.MaxMessageBytes + 1<<20))
	desksidev1.RegisterAgentServiceServer(srv, h.relay)
	go srv.Serve(lis)
	h.lis.Store(lis)
	h.srv = srv
}

// stream returns the next stream the agent opens.
func (h *harness) stream() *relayStream {
	h.t.Helper()
	select {
	case rs := <-h.relay.streams:
		return rs
	case <-time.After(wait):
		h.t.Fatalf("the agent opened no stream within %s", wait)
		return nil
	}
}

func (h *harness) connected(want bool) {
	h.t.Helper()
	testpoll.CheckFor(h.t, wait, 5*time.Millisecond, func() error {
		if h.link.Connected() != want {
			return fmt.Errorf("Connected() = %v, want %v", !want, want)
		}
		return nil
	})
}

func (h *harness) spoolLen(want int) {
	h.t.Helper()
	testpoll.CheckFor(h.t, wait, 5*time.Millisecond, func() error {
		if n := h.spool.Len(); n != want {
			return fmt.Errorf("spool holds %d samples, want %d", n, want)
		}
		return nil
	})
}

func (h *harness) append(n int) {
	h.t.Helper()
	for range n {
		if _, err := h.spool.Append(&desksidev1.HealthSample{Time: timestamppb.Now()}); err != nil {
			h.t.Fatal(err)
		}
	}
}

func TestHelloWelcomeInventory(t *testing.T) {
	h := newHarness(t, nil)
	rs := h.stream()
	hello := rs.welcome(t, &desksidev1.Welcome{ProtocolVersion: wire.ProtocolVersion, DeviceId: "dev-test", HealthInterval: durationpb.New(50 * time.Millisecond)})
	if hello.GetProtocolVersion() != wire.ProtocolVersion || hello.GetHostname() != "test-host" || hello.GetAgentVersion() != "v-test" ||
		hello.GetOs() != runtime.GOOS || hello.GetArch() != runtime.GOARCH {
		t.Errorf("Hello = %v", hello)
	}
	inv := rs.next(t)
	if inv.GetInventory().GetInventory().GetHostname() != "test-host" || inv.GetRefId() != 0 || inv.GetId() == 0 {
		t.Fatalf("after Welcome: %v, want the inventory, unasked", inv)
	}
	h.connected(true)
	rs.ack(t, inv.GetId(), &desksidev1.Ack{Accepted: true})

	// Welcome set the health interval to 50 ms: samples come.
	hr := rs.next(t)
	if len(hr.GetHealth().GetSamples()) == 0 {
		t.Fatalf("%T, want a health report from the 50 ms sampler", hr.GetBody())
	}
}

func TestRequests(t *testing.T) {
	h := newHarness(t, nil)
	rs := h.stream()
	rs.connected(t)

	rs.send(t, &desksidev1.RelayMessage{Id: 7, Body: &desksidev1.RelayMessage_Ping{Ping: &desksidev1.Ping{Payload: []byte("x")}}})
	if m := rs.next(t); m.GetRefId() != 7 || string(m.GetPong().GetPayload()) != "x" {
		t.Errorf("ping 7: got %v, want a Pong with its payload", m)
	}
	reads := h.inv.reads.Load()
	rs.send(t, &desksidev1.RelayMessage{Id: 8, Body: &desksidev1.RelayMessage_CollectInventory{CollectInventory: &desksidev1.CollectInventory{}}})
	if m := rs.next(t); m.GetRefId() != 8 || m.GetInventory() == nil || h.inv.reads.Load() != reads+1 {
		t.Errorf("collect-inventory 8: got %v, want a fresh inventory", m)
	}
	// No Checker configured: answered, not ignored.
	rs.send(t, &desksidev1.RelayMessage{Id: 9, Body: &desksidev1.RelayMessage_RunChecks{RunChecks: &desksidev1.RunChecks{}}})
	if m := rs.next(t); m.GetRefId() != 9 || !strings.Contains(m.GetError().GetMessage(), "does not run diagnostics") {
		t.Errorf("run-checks 9: got %v, want an error", m)
	}
}

func TestHealthAck(t *testing.T) {
	h := newHarness(t, nil)
	h.append(2)
	rs := h.stream()
	rs.connected(t)

	m := rs.next(t)
	if n := len(m.GetHealth().GetSamples()); n != 2 {
		t.Fatalf("got %v, want a report of the 2 spooled samples", m)
	}
	rs.ack(t, m.GetId(), &desksidev1.Ack{Accepted: true, Stored: 2})
	h.spoolLen(0)

	// The relay could not store them: they stay, to be sent again.
	h.append(1)
	m = rs.next(t)
	rs.ack(t, m.GetId(), &desksidev1.Ack{Error: &desksidev1.AckError{Code: desksidev1.AckErrorCode_ACK_ERROR_CODE_UNAVAILABLE, Message: "store down"}})
	testpoll.CheckFor(t, wait, 5*time.Millisecond, func() error { return h.logs.find("will retry: store down") })
	if n := h.spool.Len(); n != 1 {
		t.Errorf("after UNAVAILABLE the spool holds %d samples, want 1", n)
	}
}

func TestHealthRefused(t *testing.T) {
	h := newHarness(t, nil)
	h.append(1)
	rs := h.stream()
	rs.connected(t)
	m := rs.next(t)
	rs.ack(t, m.GetId(), &desksidev1.Ack{Error: &desksidev1.AckError{Code: desksidev1.AckErrorCode_ACK_ERROR_CODE_INVALID, Message: "bad sample"}})
	h.spoolLen(0) // refused for good: dropped, not re-sent forever
	if err := h.logs.find("relay refused health samples; dropping them: bad sample"); err != nil {
		t.Error(err)
	}
}

// TestHealthRateLimited: a RATE_LIMITED answer keeps the samples in the
// spool, and nothing more is sent until retry_after has passed, even as new
// samples arrive; then the held samples and the new ones go out together.
func TestHealthRateLimited(t *testing.T) {
	h := newHarness(t, nil)
	h.append(1)
	rs := h.stream()
	rs.connected(t)
	m := rs.next(t)
	const after = 1500 * time.Millisecond
	refused := time.Now()
	rs.ack(t, m.GetId(), &desksidev1.Ack{RetryAfter: durationpb.New(after), Error: &desksidev1.AckError{
		Code: desksidev1.AckErrorCode_ACK_ERROR_CODE_RATE_LIMITED, Message: "health samples over 960/h"}})
	testpoll.CheckFor(t, wait, 5*time.Millisecond, func() error { return h.logs.find("keeping them in the spool") })
	h.append(2) // would send at once, were the agent not holding
	m = rs.next(t)
	if d := time.Since(refused); d < after {
		t.Errorf("health sent again %s after RATE_LIMITED, want at least %s", d, after)
	}
	if n := len(m.GetHealth().GetSamples()); n != 3 {
		t.Fatalf("after the wait the agent sent %d samples, want the held one and the 2 new", n)
	}
	rs.ack(t, m.GetId(), &desksidev1.Ack{Accepted: true, Stored: 3})
	h.spoolLen(0)
}

func TestRateLimitWait(t *testing.T) {
	for _, c := range []struct {
		asked time.Duration
		n     int
		want  time.Duration
	}{
		{0, 1, time.Second}, {3 * time.Second, 1, 3 * time.Second}, {3 * time.Second, 3, 12 * time.Second},
		{time.Minute, 20, maxRateLimitWait}, {time.Hour, 1, maxRateLimitWait},
	} {
		if got := rateLimitWait(c.asked, c.n); got != c.want {
			t.Errorf("rateLimitWait(%s, %d) = %s, want %s", c.asked, c.n, got, c.want)
		}
	}
}

// TestStreamEndsReconnect ends the stream while a health report awaits its
// Ack: the agent reconnects and sends the same samples again.
func TestStreamEndsReconnect(t *testing.T) {
	h := newHarness(t, nil)
	h.append(3)
	rs := h.stream()
	rs.connected(t)
	first := rs.next(t)
	rs.end <- status.Error(codes.Unavailable, "relay restarting")
	h.connected(false)

	rs = h.stream()
	rs.connected(t)
	again := rs.next(t)
	if len(again.GetHealth().GetSamples()) != 3 || again.GetHealth().GetSamples()[0].GetId() != first.GetHealth().GetSamples()[0].GetId() {
		t.Fatalf("after reconnecting: %v, want the 3 unacknowledged samples again", again)
	}
	rs.ack(t, again.GetId(), &desksidev1.Ack{Accepted: true})
	h.spoolLen(0)
	if err := h.logs.find("relay stream ended; reconnecting: relay restarting"); err != nil {
		t.Error(err)
	}
}

// TestRelayVanishes stops the relay's server outright and starts another:
// the agent reconnects to it and delivers what was not acknowledged.
func TestRelayVanishes(t *testing.T) {
	h := newHarness(t, nil)
	h.append(1)
	rs := h.stream()
	rs.connected(t)
	rs.next(t) // the health report, never acknowledged
	h.srv.Stop()
	h.connected(false)

	h.serve()
	rs = h.stream()
	rs.connected(t)
	if m := rs.next(t); len(m.GetHealth().GetSamples()) != 1 {
		t.Fatalf("after the relay came back: %v, want the unacknowledged sample", m)
	}
	h.connected(true)
}

// TestSendErrorEndsSession makes a request goroutine's Send fail (a report
// over the message limit): the session ends with that error, and the agent
// reconnects. TestSendEOFReportsStatus covers the wrapping.
func TestSendErrorEndsSession(t *testing.T) {
	huge := &desksidev1.CheckReport{Results: []*desksidev1.CheckResult{{Name: "big", Summary: strings.Repeat("x", wire.MaxMessageBytes)}}}
	h := newHarness(t, func(c *Config) { c.Checks = fakeChecks{report: huge} })
	rs := h.stream()
	rs.connected(t)
	rs.send(t, &desksidev1.RelayMessage{Id: 5, Body: &desksidev1.RelayMessage_RunChecks{RunChecks: &desksidev1.RunChecks{}}})

	rs = h.stream() // reconnected
	rs.connected(t)
	h.connected(true)
	// gRPC ends the stream on a failed Send, so the receiver may report
	// the same status before the request goroutine does.
	if err := h.logs.find("larger than max"); err != nil {
		t.Error(err)
	}
}

func TestSendErrorWraps(t *testing.T) {
	err := error(&sendError{kind: "Health", err: status.Error(codes.Unavailable, "gone")})
	if status.Code(err) != codes.Unavailable || !errors.Is(err, err.(*sendError).err) {
		t.Errorf("%v: code %v", err, status.Code(err))
	}
	if got := messageKind(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_CheckReport{}}); got != "CheckReport" {
		t.Errorf("messageKind = %q", got)
	}
}

// eofStream is a stream whose Send fails with io.EOF, as gRPC's does once
// the stream has ended, and whose Recv still delivers a message before
// the stream's status.
type eofStream struct {
	desksidev1.AgentService_ConnectClient
	recv chan *desksidev1.RelayMessage
}

func (e *eofStream) Send(*desksidev1.AgentMessage) error { return io.EOF }
func (e *eofStream) Recv() (*desksidev1.RelayMessage, error) {
	if m, ok := <-e.recv; ok {
		return m, nil
	}
	return nil, status.Error(codes.PermissionDenied, "device revoked")
}

// TestSendEOFReportsStatus: a Send that fails with io.EOF ends the session
// with the stream's status, read past what the relay still sent.
func TestSendEOFReportsStatus(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	st := &eofStream{recv: make(chan *desksidev1.RelayMessage, 1)}
	st.recv <- &desksidev1.RelayMessage{Id: 1, Body: &desksidev1.RelayMessage_Ping{Ping: &desksidev1.Ping{}}}
	close(st.recv)
	s := newSession(ctx, nil, st)
	go s.receive()
	defer func() { cancel(); <-s.recvDone }()
	_, err := s.send(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Health{Health: &desksidev1.HealthReport{}}})
	err = s.ended(err)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "sending Health to the relay: stream closed") {
		t.Errorf("ended: %v (code %v), want the stream's PermissionDenied", err, status.Code(err))
	}
}

// failingStream fails to send check reports, as gRPC does a message over
// the limit, and otherwise delivers what the test puts in in.
type failingStream struct {
	desksidev1.AgentService_ConnectClient
	ctx context.Context
	in  chan *desksidev1.RelayMessage
}

func (f *failingStream) Send(m *desksidev1.AgentMessage) error {
	if m.GetCheckReport() != nil {
		return status.Error(codes.ResourceExhausted, "message too large")
	}
	return nil
}

func (f *failingStream) Recv() (*desksidev1.RelayMessage, error) {
	select {
	case m := <-f.in:
		return m, nil
	case <-f.ctx.Done():
		return nil, f.ctx.Err()
	}
}

// TestRequestSendErrorEndsSession: a request goroutine whose Send fails
// ends the session with that error while the stream still receives.
func TestRequestSendErrorEndsSession(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	l, err := New(Config{State: &enroll.State{}, Spool: sp, Inventory: &fakeInventory{}, Health: fakeSampler{},
		Checks: fakeChecks{report: &desksidev1.CheckReport{}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	st := &failingStream{ctx: ctx, in: make(chan *desksidev1.RelayMessage, 1)}
	s := newSession(ctx, l, st)
	go s.receive()
	defer func() { cancel(); s.reqs.stop(); <-s.recvDone }()
	st.in <- &desksidev1.RelayMessage{Id: 3, Body: &desksidev1.RelayMessage_RunChecks{RunChecks: &desksidev1.RunChecks{}}}
	err = s.serve()
	var se *sendError
	if !errors.As(err, &se) || se.kind != "CheckReport" || status.Code(err) != codes.ResourceExhausted {
		t.Errorf("serve: %v, want the failed CheckReport send", err)
	}
}

// changingInventory reports the hostname it holds at each read.
type changingInventory struct{ host atomic.Value }

func (c *changingInventory) Read(context.Context) (*desksidev1.Inventory, error) {
	return &desksidev1.Inventory{Hostname: c.host.Load().(string), CollectedAt: timestamppb.Now()}, nil
}

// The Dialer opens the link's connections, and CheckInventory sends a
// changed inventory at once rather than at the next InventoryInterval.
func TestDialerAndCheckInventory(t *testing.T) {
	var dials atomic.Int32
	var hp atomic.Pointer[harness]
	inv := &changingInventory{}
	inv.host.Store("before")
	ready := make(chan struct{})
	h := newHarness(t, func(c *Config) {
		c.Inventory = inv
		c.Dialer = func(ctx context.Context, _ string) (net.Conn, error) {
			<-ready
			dials.Add(1)
			return hp.Load().lis.Load().DialContext(ctx)
		}
	})
	hp.Store(h)
	close(ready)
	rs := h.stream()
	rs.welcome(t, &desksidev1.Welcome{ProtocolVersion: wire.ProtocolVersion, DeviceId: "dev-test"})
	first := rs.next(t)
	if first.GetInventory().GetInventory().GetHostname() != "before" {
		t.Fatalf("after Welcome: %v, want the inventory", first)
	}
	rs.ack(t, first.GetId(), &desksidev1.Ack{Accepted: true})
	if dials.Load() == 0 {
		t.Error("the link did not dial through Config.Dialer")
	}
	h.connected(true)
	inv.host.Store("after")
	h.link.CheckInventory()
	if m := rs.next(t); m.GetInventory().GetInventory().GetHostname() != "after" || m.GetRefId() != 0 {
		t.Errorf("after CheckInventory: %v, want the changed inventory, unasked", m)
	}
}
