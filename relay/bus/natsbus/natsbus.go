// Package natsbus is a bus.Bus over NATS core for relays that scale out:
// a console connected to one relay reaches an agent whose stream is held
// by another.
//
// # Subjects
//
// Everything lives under "deskside.<prefix>." (Open's prefix, so several
// deployments or test runs share one NATS without colliding; grant a relay
// "deskside.<prefix>.>" when NATS has authorization):
//
//	dev.<device>.req       requests for a device; only its current holder subscribes
//	dev.<device>.claim     a new holder's takeover request (NATS request/reply)
//	dev.<device>.ann       a holder's announcement of its route generation
//	r.<bus>.<n>            a caller's inbox for exchange n (one wildcard subscription per Bus)
//	x.<bus>.<n>            a serving relay's control subject for exchange n (likewise)
//
// <device> is the device id when it is made of [A-Za-z0-9_-], else "~"
// and its unpadded base64url.
//
// # Exchanges
//
// Stream publishes a request frame to dev.<device>.req with its inbox as
// reply. NATS answers "no responders" when no relay holds the device:
// that is bus.ErrNoRoute. The holder runs the Handler and publishes to the
// inbox, with its control subject as reply: an accept frame, a data frame
// per AgentMessage (numbered from 1), and an end frame with the handler's
// error. Errors keep their identity: bus.ErrAgentGone, bus.ErrNoRoute,
// context errors and ErrTooLarge stay errors.Is-comparable (wrapped in
// RemoteError with the original text) and gRPC status errors keep their
// code and message.
//
// The caller acknowledges data frames; the holder keeps at most a window
// of unacknowledged frames and bytes in flight and otherwise blocks the
// handler's recv, so a slow console slows the agent as with bus.Local.
// Both sides send something at least every heartbeat period (a heartbeat
// frame; an ack) and give up on a peer silent for missed periods: the
// caller returns bus.ErrAgentGone, the holder cancels the handler's
// context (and the handler tells the agent). A gap in the frame numbers
// (NATS core drops messages on reconnects and to slow consumers) ends the
// exchange with bus.ErrAgentGone too. When recv returns true the caller
// sends done, on ctx's end cancel; either cancels the handler's context.
// Frames for an exchange the caller no longer knows are answered with
// cancel, and frames published to a subscription that is gone come back
// as NATS "no responders", so a relay that disappears is usually noticed
// at once rather than after the heartbeats stop. A relay that loses its
// own NATS connection ends all its exchanges at once, both ways, as a
// gRPC stream ends with its transport.
//
// # Takeover
//
// A Serve first asks the current holder, if any, to give the route up (a
// claim on dev.<device>.claim); the holder unsubscribes and then answers,
// so requests never reach both. Then it subscribes and announces its
// route generation, a hybrid logical clock: wall-clock nanoseconds, but
// above every generation the relay has seen, including the one the old
// holder answered the claim with. A holder that hears an announcement
// with a higher generation yields; one that hears a lower generation
// announces its own, so relays that raced or were cut off from NATS while
// the agent moved (they re-announce on reconnect) settle on the newest.
// A request that reaches a holder which has just yielded is answered
// "moved" and sent again. Stream calls for a device served by the same
// Bus skip NATS and call the handler directly, as bus.Local does.
package natsbus

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/bus"
)

// ErrTooLarge is returned when a request or a reply does not fit in one
// NATS message (the server's max_payload, 1 MiB unless configured).
var ErrTooLarge = errors.New("natsbus: message exceeds the NATS server's max_payload")

// ErrClosed is returned by a Bus after Close.
var ErrClosed = errors.New("natsbus: bus closed")

// ErrDisconnected is returned by Stream while the connection to NATS is
// down (nats.go keeps reconnecting); the device may well be online.
var ErrDisconnected = errors.New("natsbus: not connected to NATS")

var errBadRequest = errors.New("natsbus: malformed request")

// Defaults; see the Option functions.
const (
	DefaultHeartbeat    = 5 * time.Second
	DefaultMissed       = 3
	DefaultClaimTimeout = 2 * time.Second
	DefaultWindowMsgs   = 64
	DefaultWindowBytes  = 4 << 20
)

type options struct {
	heartbeat    time.Duration
	missed       int
	claimTimeout time.Duration
	winMsgs      int
	winBytes     int
	natsOpts     []nats.Option
}

// Option adjusts a Bus.
type Option func(*options)

// WithHeartbeat sets how often each side of a long exchange proves it is
// alive, and after how many silent periods the other side gives up
// (default 5s and 3). The caller's values govern an exchange.
func WithHeartbeat(every time.Duration, missed int) Option {
	return func(o *options) {
		if every >= time.Millisecond {
			o.heartbeat = every
		}
		if missed > 0 {
			o.missed = missed
		}
	}
}

// WithClaimTimeout bounds how long Serve waits for the previous holder of
// a device to yield (default 2s); Serve then goes ahead regardless.
func WithClaimTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.claimTimeout = d
		}
	}
}

// WithWindow sets the flow-control window of the exchanges this Bus
// starts: replies in flight before the serving relay waits for the
// caller (default 64 replies and 4 MiB; one reply is always allowed).
func WithWindow(msgs, bytes int) Option {
	return func(o *options) {
		if msgs > 0 {
			o.winMsgs = msgs
		}
		if bytes > 0 {
			o.winBytes = bytes
		}
	}
}

// WithNATSOptions passes options to nats.Connect (credentials, TLS, ...);
// they apply after natsbus's own.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(o *options) { o.natsOpts = append(o.natsOpts, opts...) }
}

// Bus is a bus.Bus over NATS.
type Bus struct {
	nc    *nats.Conn
	log   *slog.Logger
	o     options
	base  string // "deskside.<prefix>."
	id    string
	inbox string // base + "r.<id>."
	ctl   string // base + "x.<id>."

	seq atomic.Uint64

	mu        sync.Mutex
	closed    bool
	regs      map[string]*registration // the newest local registration per device
	calls     map[string]*call
	exchanges map[string]*exchange
	lastGen   uint64

	wg sync.WaitGroup // exchanges being served
}

var _ bus.Bus = (*Bus)(nil)

// Open connects to NATS at url (comma-separated URLs for a cluster) and
// returns a Bus whose subjects are under "deskside.<prefix>."; prefix is
// one or more dot-separated tokens of [A-Za-z0-9_-], "default" when
// empty. nats.go reconnects for ever after a connection is lost; routes
// come back when it does. logger may be nil.
func Open(url, prefix string, logger *slog.Logger, opts ...Option) (*Bus, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if prefix == "" {
		prefix = "default"
	}
	if !validPrefix(prefix) {
		return nil, fmt.Errorf("natsbus: subject prefix %q: use dot-separated tokens of letters, digits, '-' and '_'", prefix)
	}
	o := options{heartbeat: DefaultHeartbeat, missed: DefaultMissed, claimTimeout: DefaultClaimTimeout,
		winMsgs: DefaultWindowMsgs, winBytes: DefaultWindowBytes}
	for _, opt := range opts {
		opt(&o)
	}
	b := &Bus{
		log: logger.With("component", "natsbus"), o: o,
		base: "deskside." + prefix + ".", id: nuid.Next(),
		regs: make(map[string]*registration), calls: make(map[string]*call), exchanges: make(map[string]*exchange),
	}
	b.inbox = b.base + "r." + b.id + "."
	b.ctl = b.base + "x." + b.id + "."
	nopts := []nats.Option{
		nats.Name("deskside-relay " + b.id),
		nats.Timeout(5 * time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, 2*time.Second),
		nats.PingInterval(15 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DrainTimeout(10 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("lost the NATS connection; reconnecting", "error", err)
			}
			b.dropExchanges(err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
			b.reannounce()
		}),
		// Claims are NATS requests: keep their replies under the prefix
		// too, so one permission covers the bus.
		nats.CustomInboxPrefix(b.base + "_INBOX"),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			b.log.Error("NATS error", "subject", subj, "error", err)
		}),
	}
	nc, err := nats.Connect(url, append(nopts, o.natsOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("natsbus: connect to NATS at %s: %w", url, err)
	}
	b.nc = nc
	for subj, cb := range map[string]nats.MsgHandler{b.inbox + "*": b.onReply, b.ctl + "*": b.onControl} {
		sub, err := nc.Subscribe(subj, cb)
		if err == nil {
			// Flow control bounds what is pending here, and the callbacks
			// never block; nats.go's limits would only drop frames.
			err = sub.SetPendingLimits(-1, -1)
		}
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("natsbus: subscribe %s: %w", subj, err)
		}
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsbus: NATS at %s: %w", url, err)
	}
	if mp := nc.MaxPayload(); mp < wire.MaxMessageBytes+frameOverhead {
		b.log.Warn("the NATS server's max_payload is below the agent protocol's message limit; larger requests and replies between relays will fail",
			"max_payload", mp, "agent_limit", wire.MaxMessageBytes, "fix", "set max_payload: 8MB in nats-server.conf")
	}
	return b, nil
}

// Close stops serving (requests for this relay's devices get
// bus.ErrNoRoute, or reach a newer stream elsewhere), ends the exchanges
// it serves (their callers get bus.ErrAgentGone) and those it started
// (ErrClosed), then drains the NATS connection.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	regs := make([]*registration, 0, len(b.regs))
	for _, r := range b.regs {
		regs = append(regs, r)
	}
	xs := make([]*exchange, 0, len(b.exchanges))
	for _, x := range b.exchanges {
		xs = append(xs, x)
	}
	calls := make([]*call, 0, len(b.calls))
	for _, c := range b.calls {
		calls = append(calls, c)
	}
	b.mu.Unlock()

	for _, r := range regs {
		r.end(false)
	}
	for _, x := range xs {
		x.cancel(errBusClosed)
	}
	for _, c := range calls {
		c.fail(ErrClosed)
	}
	waited := make(chan struct{})
	go func() { b.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		b.log.Warn("handlers still running at close")
	}
	if b.nc.IsClosed() {
		return nil
	}
	closed := b.nc.StatusChanged(nats.CLOSED)
	if err := b.nc.Drain(); err != nil {
		b.nc.Close() // reconnecting, or closed meanwhile: nothing to drain
		return nil
	}
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		b.log.Warn("NATS drain timed out")
		b.nc.Close()
	}
	return nil
}

var errBusClosed = errors.New("natsbus: the serving relay is shutting down")

// dropExchanges ends every exchange when the NATS connection is lost, as a
// gRPC stream ends with its transport: frames in flight are gone, and the
// peers' next frames find no subscriber. Routes survive: nats.go
// resubscribes when it reconnects.
func (b *Bus) dropExchanges(cause error) {
	if cause == nil {
		cause = nats.ErrConnectionClosed
	}
	b.mu.Lock()
	xs := make([]*exchange, 0, len(b.exchanges))
	for _, x := range b.exchanges {
		xs = append(xs, x)
	}
	calls := make([]*call, 0, len(b.calls))
	for _, c := range b.calls {
		calls = append(calls, c)
	}
	b.mu.Unlock()
	for _, c := range calls {
		c.fail(fmt.Errorf("%w: this relay lost its NATS connection: %w", bus.ErrAgentGone, cause))
	}
	for _, x := range xs {
		x.mu.Lock()
		x.callerGone = true
		x.mu.Unlock()
		x.cancel(fmt.Errorf("%w: lost the NATS connection: %w", errCallerGone, cause))
	}
}

func (b *Bus) nextID() string { return strconv.FormatUint(b.seq.Add(1), 36) }

// nextGenLocked returns a route generation above every one seen.
func (b *Bus) nextGenLocked() uint64 {
	g := uint64(time.Now().UnixNano())
	if g <= b.lastGen {
		g = b.lastGen + 1
	}
	b.lastGen = g
	return g
}

func (b *Bus) observe(gen uint64) {
	b.mu.Lock()
	if gen > b.lastGen {
		b.lastGen = gen
	}
	b.mu.Unlock()
}

func (b *Bus) maxPayload() int {
	if mp := b.nc.MaxPayload(); mp > 0 {
		return int(mp)
	}
	return 1 << 20
}

func (b *Bus) devSubject(deviceID string) (string, error) {
	if deviceID == "" {
		return "", errors.New("natsbus: empty device id")
	}
	tok := deviceID
	if !plainToken(deviceID) || len(deviceID) > 128 {
		tok = "~" + base64.RawURLEncoding.EncodeToString([]byte(deviceID))
	}
	return b.base + "dev." + tok + ".", nil
}

func plainToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validPrefix(p string) bool {
	for tok := range strings.SplitSeq(p, ".") {
		if !plainToken(tok) {
			return false
		}
	}
	return true
}

// lastToken returns what follows the final dot of subj.
func lastToken(subj string) string {
	return subj[strings.LastIndexByte(subj, '.')+1:]
}

// isNoResponders reports NATS's "no responders" status message, sent to
// a message's reply subject when nobody subscribes to its subject.
func isNoResponders(m *nats.Msg) bool {
	return len(m.Data) == 0 && m.Header.Get("Status") == "503"
}

// bodyName names a deskside message by its body, "RunCommand".
func bodyName(m protoreflect.ProtoMessage) string {
	r := m.ProtoReflect()
	if od := r.Descriptor().Oneofs().ByName("body"); od != nil {
		if fd := r.WhichOneof(od); fd != nil && fd.Message() != nil {
			return string(fd.Message().Name())
		}
	}
	return string(r.Descriptor().Name())
}

func (b *Bus) publish(subj, reply string, data []byte) error {
	return b.nc.PublishMsg(&nats.Msg{Subject: subj, Reply: reply, Data: data})
}
