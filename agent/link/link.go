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
	"log/slog"
	"net"
	"slices"
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

// OrgKeyTaker is a Guard that takes the organisation key chains the relay
// sends (agent/orgtrust.Guard).
type OrgKeyTaker interface {
	OrgKeyUpdate(u *desksidev1.OrgKeyUpdate)
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
	// Guard, when set, may refuse a relay request before it runs (signed
	// envelopes and local policy, agent/orgtrust); when it is an
	// OrgKeyTaker it also gets the relay's organisation key chains.
	Guard interface {
		Check(m *desksidev1.RelayMessage) error
	}
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
	// RenewRetry is how long the agent waits to ask again when the relay
	// did not renew its certificate; default an hour.
	RenewRetry time.Duration
	Hostname   string
	Version    string
	Logger     *slog.Logger
	// OnHelpUpdate, when set, gets the relay's pushes about Get help
	// requests filed from this device (a technician's reply, chat line,
	// status change or pick-up), in order, on the stream's goroutine: it
	// must return quickly.
	OnHelpUpdate func(*desksidev1.HelpUpdate)
	// OnConnected, when set, runs after each Welcome (agent/update
	// confirms a new version with it), on the stream's goroutine.
	OnConnected func()
	// Updates, when set, installs the releases the relay offers; after
	// one is installed OnUpdateInstalled restarts the agent into it, and
	// LastUpdate tells the relay in each Hello how the last one ended.
	Updates           Updater
	OnUpdateInstalled func()
	LastUpdate        func() *desksidev1.UpdateStatus
	// Dialer, when set, opens the TCP connections to the relay instead of
	// the default dialer (the fleet simulator picks a loopback source
	// address with it and simulates network outages); TLS runs over what
	// it returns.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
}

func (l *Link) lastUpdate() *desksidev1.UpdateStatus {
	if l.cfg.LastUpdate == nil {
		return nil
	}
	return l.cfg.LastUpdate()
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
	c.RenewRetry = cmp.Or(c.RenewRetry, time.Hour)
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
	// invNow asks the running session to re-read the inventory at once
	// (CheckInventory).
	invNow chan struct{}
	// Connected reports whether a stream is established (for tests and status).
	connected atomic.Bool
	// lastInv is the fingerprint of the inventory the relay last
	// accepted; only the running session touches it.
	lastInv []byte
	// transport replaces the TLS credentials the State gives when set:
	// in-package tests connect over an in-memory listener without TLS.
	transport []grpc.DialOption
	// redial is set by a session that changed the identity (a renewed
	// certificate, other pinned CAs): the next connection is dialed anew
	// with the State's new TLS configuration. Only Run's goroutine touches it.
	redial bool
	// help is the Get help calls awaiting answers (help.go).
	help helpCalls
}

// New builds a Link.
func New(cfg Config) (*Link, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	l := &Link{cfg: cfg, log: cfg.Logger, retune: make(chan struct{}, 1), invNow: make(chan struct{}, 1)}
	l.interval.Store(int64(cfg.HealthInterval))
	return l, nil
}

// Connected reports whether the stream to the relay is up.
func (l *Link) Connected() bool { return l.connected.Load() }

// CheckInventory asks the link to re-read the inventory now rather than at
// the next InventoryInterval, and to send it if it changed. It does not
// block; without a stream the next session sends the inventory anyway.
func (l *Link) CheckInventory() {
	select {
	case l.invNow <- struct{}{}:
	default:
	}
}

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

	cc, err := l.dial()
	if err != nil {
		return err
	}
	defer func() { cc.Close() }()
	client := desksidev1.NewAgentServiceClient(cc)

	attempt := 0
	for {
		healthy, err := l.session(ctx, client)
		l.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if l.redial {
			// A new identity: a new connection, at once.
			l.redial = false
			cc.Close()
			ncc, derr := l.dial()
			if derr != nil {
				return derr
			}
			cc, client = ncc, desksidev1.NewAgentServiceClient(ncc)
		}
		if errors.Is(err, errRenewed) {
			l.log.Info("reconnecting with the renewed certificate")
			attempt = 0
			continue
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

// dial builds the gRPC connection to the relay with the State's current
// identity.
// StreamOptions are the agent connection's buffer and flow-control
// settings; the relay's benchmarks dial with them too, so that they cost
// the relay what a real agent does.
//
// The flow-control windows are fixed, which turns off grpc-go's
// bandwidth-delay estimate. With it on, every message the agent received
// after a quiet spell (each health report's Ack, every 15 s) made the
// agent send an HTTP/2 PING and the relay read it and write its ACK: two
// of the relay's four socket calls per report. A megabyte each way keeps
// a release download or a file transfer at about 10 MB/s over a 100 ms
// round trip; memory is taken only as data arrives.
func StreamOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithReadBufferSize(8 << 10),
		grpc.WithWriteBufferSize(8 << 10),
		grpc.WithInitialWindowSize(streamWindow),
		grpc.WithInitialConnWindowSize(streamWindow),
	}
}

// streamWindow is the agent connection's HTTP/2 flow-control window.
const streamWindow = 1 << 20

func (l *Link) dial() (*grpc.ClientConn, error) {
	transport := l.transport
	if transport == nil {
		transport = []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(l.cfg.State.TLSConfig()))}
	}
	if l.cfg.Dialer != nil {
		transport = append(slices.Clip(transport), grpc.WithContextDialer(l.cfg.Dialer))
	}
	cc, err := grpc.NewClient("passthrough:///"+l.cfg.State.Relay, append(append(slices.Clip(transport), StreamOptions()...),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 20 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(wire.MaxMessageBytes), grpc.MaxCallSendMsgSize(wire.MaxMessageBytes)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay: l.cfg.Backoff.Base, Multiplier: l.cfg.Backoff.Multiplier,
				Jitter: l.cfg.Backoff.Jitter, MaxDelay: l.cfg.Backoff.Max,
			},
			MinConnectTimeout: 20 * time.Second,
		}),
		grpc.WithUserAgent("deskside-agent/"+l.cfg.Version),
	)...)
	if err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	return cc, nil
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
