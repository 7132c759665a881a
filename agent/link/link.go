// Package link is the agent's connection to its relay: one long-lived
// mutual-TLS gRPC stream, re-established with the gRPC connection-backoff
// algorithm when it drops. Over it the agent says hello, sends its full
// inventory at start and whenever it changes, delivers spooled health
// samples until the relay acknowledges them, and answers relay requests.
//
// Health sampling does not depend on the stream: samples go to the
// on-disk spool every interval and are delivered when the relay is
// reachable, at least once.
package link

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/agent/spool"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

// InventoryReader collects the device inventory.
type InventoryReader interface {
	Read(ctx context.Context) (*desksidev1.Inventory, error)
}

// Sampler takes one health sample.
type Sampler interface {
	Sample(ctx context.Context) (*desksidev1.HealthSample, error)
}

// Checker runs diagnostic checks.
type Checker interface {
	Run(ctx context.Context, req *desksidev1.RunChecks) *desksidev1.CheckReport
}

// CommandRunner runs a command, streaming its output.
type CommandRunner interface {
	Run(ctx context.Context, req *desksidev1.RunCommand, emit func(*desksidev1.CommandOutput) error) *desksidev1.CommandExit
}

// ActionRunner runs remediation actions.
type ActionRunner interface {
	Run(ctx context.Context, req *desksidev1.RunAction) *desksidev1.ActionResult
}

// DesktopRunner runs remote-desktop sessions.
type DesktopRunner interface {
	// Run runs a session until it ends and returns why.
	Run(ctx context.Context, req *desksidev1.StartDesktop, signal func(*desksidev1.DesktopSignal) error) string
	// Signal passes the viewer's signaling to its session.
	Signal(sig *desksidev1.DesktopSignal) error
	// End ends a session.
	End(id, reason string)
}

// Config configures a Link.
type Config struct {
	State     *enroll.State
	Spool     *spool.Spool
	Inventory InventoryReader
	Health    Sampler
	// Checks, Commands and Actions serve relay requests; nil answers them
	// with "not supported".
	Checks   Checker
	Commands CommandRunner
	Actions  ActionRunner
	Desktop  DesktopRunner
	// HealthInterval is the sampling period; default 15 s. The relay may
	// override it in Welcome.
	HealthInterval time.Duration
	// InventoryInterval is how often the inventory is re-read to detect
	// changes; default 10 minutes.
	InventoryInterval time.Duration
	// Backoff paces reconnects; default DefaultBackoff.
	Backoff Backoff
	// BatchSize is the most samples per HealthReport; default 100.
	BatchSize int
	Hostname  string
	Version   string
	Logger    *slog.Logger
}

// CheckAndSetDefaults validates c.
func (c *Config) CheckAndSetDefaults() error {
	var errs []error
	if c.State == nil {
		errs = append(errs, errors.New("link: State is required (enroll first)"))
	}
	if c.Spool == nil {
		errs = append(errs, errors.New("link: Spool is required"))
	}
	if c.Inventory == nil {
		errs = append(errs, errors.New("link: Inventory reader is required"))
	}
	if c.Health == nil {
		errs = append(errs, errors.New("link: Health sampler is required"))
	}
	c.HealthInterval = cmp.Or(c.HealthInterval, 15*time.Second)
	if c.HealthInterval < 50*time.Millisecond {
		errs = append(errs, fmt.Errorf("link: HealthInterval %s is below 50ms", c.HealthInterval))
	}
	c.InventoryInterval = cmp.Or(c.InventoryInterval, 10*time.Minute)
	if c.Backoff == (Backoff{}) {
		c.Backoff = DefaultBackoff
	}
	c.BatchSize = min(cmp.Or(c.BatchSize, 100), wire.MaxHealthBatch)
	c.Version = cmp.Or(c.Version, "dev")
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return errors.Join(errs...)
}

// Link is a running agent connection.
type Link struct {
	cfg      Config
	log      *slog.Logger
	interval atomic.Int64 // current health interval, ns
	retune   chan struct{}
	// Connected reports whether a stream is established (for tests and status).
	connected atomic.Bool
	lastInv   []byte
}

// New builds a Link.
func New(cfg Config) (*Link, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	l := &Link{cfg: cfg, log: cfg.Logger, retune: make(chan struct{}, 1)}
	l.interval.Store(int64(cfg.HealthInterval))
	return l, nil
}

// Connected reports whether the stream to the relay is up.
func (l *Link) Connected() bool { return l.connected.Load() }

// Run samples health and keeps the relay stream up until ctx is done.
func (l *Link) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.sampleLoop(ctx)
	}()
	defer func() { <-done }()

	cc, err := grpc.NewClient("passthrough:///"+l.cfg.State.Relay,
		grpc.WithTransportCredentials(credentials.NewTLS(l.cfg.State.TLSConfig())),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 20 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(wire.MaxMessageBytes), grpc.MaxCallSendMsgSize(wire.MaxMessageBytes)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay: l.cfg.Backoff.Base, Multiplier: l.cfg.Backoff.Multiplier,
				Jitter: l.cfg.Backoff.Jitter, MaxDelay: l.cfg.Backoff.Max,
			},
			MinConnectTimeout: 20 * time.Second,
		}),
		grpc.WithReadBufferSize(8<<10),
		grpc.WithWriteBufferSize(8<<10),
		grpc.WithUserAgent("deskside-agent/"+l.cfg.Version),
	)
	if err != nil {
		return fmt.Errorf("link: %w", err)
	}
	defer cc.Close()
	client := desksidev1.NewAgentServiceClient(cc)

	attempt := 0
	for {
		healthy, err := l.stream(ctx, client)
		l.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if healthy {
			attempt = 0
		}
		delay := l.cfg.Backoff.Delay(attempt)
		attempt++
		lvl := slog.LevelWarn
		switch status.Code(err) {
		case codes.PermissionDenied, codes.FailedPrecondition, codes.Unauthenticated:
			lvl = slog.LevelError // needs a person: revoked, version mismatch, unknown device
		}
		l.log.Log(ctx, lvl, "relay stream ended; reconnecting", "err", status.Convert(err).Message(),
			"code", status.Code(err).String(), "retry_in", delay.Round(time.Millisecond).String(), "spooled", l.cfg.Spool.Len())
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (l *Link) sampleLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(l.interval.Load()))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.retune:
			t.Reset(time.Duration(l.interval.Load()))
			continue
		case <-t.C:
		}
		s, err := l.cfg.Health.Sample(ctx)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("health sample failed", "err", err)
			}
			continue
		}
		if _, err := l.cfg.Spool.Append(s); err != nil {
			l.log.Warn("health spool write failed; sample kept in memory", "err", err)
		}
	}
}

// inflightHealth is the one health report awaiting its Ack.
type inflightHealth struct {
	msgID   uint64
	upTo    uint64
	dropped uint64
}

// stream runs one Connect stream. healthy reports whether it got as far as
// Welcome (which resets the backoff).
func (l *Link) stream(ctx context.Context, client desksidev1.AgentServiceClient) (healthy bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := client.Connect(ctx, grpc.WaitForReady(true))
	if err != nil {
		return false, err
	}
	var (
		sendMu sync.Mutex
		nextID uint64
	)
	// send is safe for the request goroutines too; it returns the id used.
	sendID := func(m *desksidev1.AgentMessage) (uint64, error) {
		sendMu.Lock()
		defer sendMu.Unlock()
		nextID++
		m.Id = nextID
		return nextID, st.Send(m)
	}
	send := func(m *desksidev1.AgentMessage) error {
		_, err := sendID(m)
		return err
	}
	if err := send(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Hello{Hello: &desksidev1.Hello{
		ProtocolVersion: wire.ProtocolVersion, AgentVersion: l.cfg.Version, Hostname: l.cfg.Hostname,
		Os: runtime.GOOS, Arch: runtime.GOARCH,
	}}}); err != nil {
		return false, recvErr(st, err)
	}
	first, err := st.Recv()
	if err != nil {
		return false, err
	}
	w := first.GetWelcome()
	if w == nil {
		return false, fmt.Errorf("relay answered Hello with %T, not Welcome", first.GetBody())
	}
	if d := w.GetHealthInterval().AsDuration(); d >= 50*time.Millisecond && d != time.Duration(l.interval.Load()) {
		l.interval.Store(int64(d))
		select {
		case l.retune <- struct{}{}:
		default:
		}
	}
	l.connected.Store(true)
	l.log.Info("connected to relay", "relay", l.cfg.State.Relay, "device", w.GetDeviceId())

	msgs := make(chan *desksidev1.RelayMessage)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := st.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()

	var health *inflightHealth
	invMsgs := map[uint64][]byte{} // inventory message id → fingerprint
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	invTick := time.NewTicker(l.cfg.InventoryInterval)
	defer invTick.Stop()

	sendInventory := func(ref uint64, force bool) error {
		inv, err := l.cfg.Inventory.Read(ctx)
		if err != nil {
			l.log.Warn("inventory collection failed", "err", err)
			if ref != 0 {
				return send(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_Error{Error: &desksidev1.RequestError{Message: err.Error()}}})
			}
			return nil
		}
		fp := Fingerprint(inv)
		if !force && string(fp) == string(l.lastInv) {
			return nil
		}
		id, err := sendID(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_Inventory{Inventory: &desksidev1.InventoryReport{Inventory: inv}}})
		if err != nil {
			return err
		}
		invMsgs[id] = fp
		return nil
	}
	sendHealth := func() error {
		if health != nil {
			return nil
		}
		batch, err := l.cfg.Spool.Peek(l.cfg.BatchSize)
		if err != nil {
			return fmt.Errorf("read spool: %w", err)
		}
		dropped := l.cfg.Spool.Dropped()
		if len(batch) == 0 && dropped == 0 {
			return nil
		}
		id, err := sendID(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Health{Health: &desksidev1.HealthReport{Samples: batch, Dropped: dropped}}})
		if err != nil {
			return err
		}
		health = &inflightHealth{msgID: id, dropped: dropped}
		if len(batch) > 0 {
			health.upTo = batch[len(batch)-1].GetId()
		}
		return nil
	}

	// Requests that take time (checks, commands, actions) run in their own
	// goroutines, owned by this stream: it cancels and waits for them.
	reqs := newRequests(ctx)
	defer reqs.stop()

	if err := sendInventory(0, true); err != nil {
		return true, recvErr(st, err)
	}
	if err := sendHealth(); err != nil {
		return true, recvErr(st, err)
	}
	for {
		var err error
		select {
		case <-ctx.Done():
			reqs.stop() // no request goroutine may still be sending
			sendMu.Lock()
			st.CloseSend()
			sendMu.Unlock()
			return true, ctx.Err()
		case err := <-errc:
			return true, err
		case <-l.cfg.Spool.Notify():
			err = sendHealth()
		case <-retry.C:
			err = sendHealth()
		case <-invTick.C:
			err = sendInventory(0, false)
		case m := <-msgs:
			switch b := m.GetBody().(type) {
			case *desksidev1.RelayMessage_Ack:
				a := b.Ack
				switch {
				case health != nil && m.GetRefId() == health.msgID:
					h := health
					health = nil
					if a.GetAccepted() || a.GetError().GetCode() != desksidev1.AckErrorCode_ACK_ERROR_CODE_UNAVAILABLE {
						if !a.GetAccepted() {
							l.log.Error("relay refused health samples; dropping them", "err", a.GetError().GetMessage(), "up_to", h.upTo)
						}
						if err = l.cfg.Spool.Ack(h.upTo, h.dropped); err == nil {
							err = sendHealth()
						}
					} else {
						l.log.Warn("relay could not store health samples; will retry", "err", a.GetError().GetMessage())
						retry.Reset(5 * time.Second)
					}
				case invMsgs[m.GetRefId()] != nil:
					fp := invMsgs[m.GetRefId()]
					delete(invMsgs, m.GetRefId())
					if a.GetAccepted() {
						l.lastInv = fp
					} else {
						l.log.Error("relay refused the inventory", "err", a.GetError().GetMessage())
					}
				}
			case *desksidev1.RelayMessage_Ping:
				err = send(&desksidev1.AgentMessage{RefId: m.GetId(), Body: &desksidev1.AgentMessage_Pong{Pong: &desksidev1.Pong{Payload: b.Ping.GetPayload()}}})
			case *desksidev1.RelayMessage_CollectInventory:
				err = sendInventory(m.GetId(), true)
			case *desksidev1.RelayMessage_RunChecks:
				ref := m.GetId()
				if l.cfg.Checks == nil {
					err = send(unsupported(ref, "diagnostics"))
					break
				}
				reqs.start(ref, func(ctx context.Context) {
					rep := l.cfg.Checks.Run(ctx, b.RunChecks)
					send(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_CheckReport{CheckReport: rep}})
				})
			case *desksidev1.RelayMessage_RunCommand:
				ref := m.GetId()
				if l.cfg.Commands == nil {
					err = send(unsupported(ref, "commands"))
					break
				}
				reqs.start(ref, func(ctx context.Context) {
					exit := l.cfg.Commands.Run(ctx, b.RunCommand, func(o *desksidev1.CommandOutput) error {
						return send(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_CommandOutput{CommandOutput: o}})
					})
					send(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_CommandExit{CommandExit: exit}})
				})
			case *desksidev1.RelayMessage_StartDesktop:
				ref := m.GetId()
				if l.cfg.Desktop == nil {
					err = send(unsupported(ref, "remote desktop sessions"))
					break
				}
				req := b.StartDesktop
				reqs.start(ref, func(ctx context.Context) {
					reason := l.cfg.Desktop.Run(ctx, req, func(sig *desksidev1.DesktopSignal) error {
						return send(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_DesktopSignal{DesktopSignal: sig}})
					})
					send(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_DesktopEnded{DesktopEnded: &desksidev1.DesktopEnded{SessionId: req.GetSessionId(), Reason: reason}}})
				})
			case *desksidev1.RelayMessage_DesktopSignal:
				if l.cfg.Desktop == nil {
					err = send(unsupported(m.GetId(), "remote desktop sessions"))
					break
				}
				if serr := l.cfg.Desktop.Signal(b.DesktopSignal); serr != nil {
					err = send(&desksidev1.AgentMessage{RefId: m.GetId(), Body: &desksidev1.AgentMessage_Error{Error: &desksidev1.RequestError{Message: serr.Error()}}})
				} else {
					err = send(&desksidev1.AgentMessage{RefId: m.GetId(), Body: &desksidev1.AgentMessage_SignalAck{SignalAck: &desksidev1.SignalAck{}}})
				}
			case *desksidev1.RelayMessage_EndDesktop:
				if l.cfg.Desktop != nil {
					l.cfg.Desktop.End(b.EndDesktop.GetSessionId(), b.EndDesktop.GetReason())
				}
			case *desksidev1.RelayMessage_CancelCommand:
				reqs.cancel(b.CancelCommand.GetCommandRef())
			case *desksidev1.RelayMessage_RunAction:
				ref := m.GetId()
				if l.cfg.Actions == nil {
					err = send(unsupported(ref, "actions"))
					break
				}
				reqs.start(ref, func(ctx context.Context) {
					res := l.cfg.Actions.Run(ctx, b.RunAction)
					send(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_ActionResult{ActionResult: res}})
				})
			default:
				if m.GetId() != 0 {
					err = send(&desksidev1.AgentMessage{RefId: m.GetId(), Body: &desksidev1.AgentMessage_Error{Error: &desksidev1.RequestError{
						Message: fmt.Sprintf("agent %s does not support %T", l.cfg.Version, m.GetBody()),
					}}})
				}
			}
		}
		if err != nil {
			return true, recvErr(st, err)
		}
	}
}

func unsupported(ref uint64, what string) *desksidev1.AgentMessage {
	return &desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_Error{Error: &desksidev1.RequestError{
		Message: "this agent does not run " + what,
	}}}
}

// requests are the relay requests running on one stream.
type requests struct {
	ctx     context.Context
	mu      sync.Mutex
	cancels map[uint64]context.CancelFunc
	wg      sync.WaitGroup
}

func newRequests(ctx context.Context) *requests {
	return &requests{ctx: ctx, cancels: make(map[uint64]context.CancelFunc)}
}

// start runs fn for request ref in a goroutine the stream owns.
func (r *requests) start(ref uint64, fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(r.ctx)
	r.mu.Lock()
	r.cancels[ref] = cancel
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.cancels, ref)
			r.mu.Unlock()
			cancel()
		}()
		fn(ctx)
	}()
}

// cancel stops request ref (a command the console cancelled).
func (r *requests) cancel(ref uint64) {
	r.mu.Lock()
	c := r.cancels[ref]
	r.mu.Unlock()
	if c != nil {
		c()
	}
}

// stop cancels every request and waits for them: a command does not
// outlive the stream that asked for it.
func (r *requests) stop() {
	r.mu.Lock()
	for _, c := range r.cancels {
		c()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// recvErr turns a Send failure into the stream's real status: gRPC reports
// io.EOF from Send and the reason from Recv.
func recvErr(st desksidev1.AgentService_ConnectClient, err error) error {
	if errors.Is(err, io.EOF) {
		for {
			if _, rerr := st.Recv(); rerr != nil {
				return rerr
			}
		}
	}
	return err
}

// Fingerprint identifies an inventory's content for change detection,
// ignoring values that move by themselves (collection time, used space,
// clock speed, battery charge).
func Fingerprint(inv *desksidev1.Inventory) []byte {
	c := proto.Clone(inv).(*desksidev1.Inventory)
	c.CollectedAt = nil
	if c.Cpu != nil {
		c.Cpu.Mhz = 0
	}
	for _, p := range c.Partitions {
		p.UsedBytes, p.FreeBytes = 0, 0
	}
	for _, b := range c.Batteries {
		b.ChargePercent = 0
		b.State = ""
		b.FullWh = 0
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	sum := sha256.Sum256(b)
	return sum[:]
}
