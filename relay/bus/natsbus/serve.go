package natsbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/bus"
)

const (
	stateClaiming = iota // asking the previous holder to yield
	stateActive          // subscribed: the device's route
	stateGone            // stopped or replaced
)

// registration is one Serve.
type registration struct {
	b          *Bus
	dev        string
	subj       string // "deskside.<prefix>.dev.<device>."
	h          bus.Handler
	token      string
	onReplaced func()

	mu       sync.Mutex
	state    int
	replaced bool
	gen      uint64
	sub      *nats.Subscription
}

// Serve implements bus.Bus: h becomes the route for deviceID on every
// relay sharing the NATS and prefix, replacing any older route here or
// elsewhere. Serve waits for the route to be in place (up to about twice
// the claim timeout), but while NATS is unreachable it returns at once:
// the route serves this relay's own Stream calls and is announced when
// the connection comes back.
func (b *Bus) Serve(deviceID string, h bus.Handler) (func(), error) {
	return b.ServeReplaced(deviceID, h, nil)
}

// ServeReplaced is Serve with a callback, run once in its own goroutine
// when a newer Serve for the device (on any relay) takes the route over.
// The relay can close the superseded agent stream then: the agent has
// reconnected elsewhere, and the stale stream will never see a request
// again. stop does nothing after that.
func (b *Bus) ServeReplaced(deviceID string, h bus.Handler, onReplaced func()) (stop func(), err error) {
	subj, err := b.devSubject(deviceID)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("natsbus: nil handler")
	}
	r := &registration{b: b, dev: deviceID, subj: subj, h: h, token: nuid.Next(), onReplaced: onReplaced}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	old := b.regs[deviceID]
	b.regs[deviceID] = r
	claimGen := b.nextGenLocked()
	b.mu.Unlock()
	if old != nil {
		// A reconnect to this relay: its UNSUB goes out before the claim.
		old.end(true)
	}

	// Ask any holder elsewhere to yield. It unsubscribes before it
	// answers, so once the answer is here NATS routes requests to nobody
	// until the subscription below.
	if b.nc.IsConnected() {
		m, err := b.nc.Request(subj+"claim", appendRoute(kindClaim, claimGen, r.token), b.o.claimTimeout)
		switch {
		case err == nil:
			if kind, gen, _, derr := decodeRoute(m.Data); derr == nil && kind == kindYielded {
				b.observe(gen)
				b.log.Info("took the route over from another stream", "device", deviceID)
			}
		case errors.Is(err, nats.ErrNoResponders):
		default:
			b.log.Warn("route claim unanswered; announcing anyway", "device", deviceID, "error", err)
		}
	}

	b.mu.Lock()
	gen := b.nextGenLocked()
	b.mu.Unlock()
	r.mu.Lock()
	if r.state != stateClaiming { // a newer Serve on this relay already replaced it
		r.mu.Unlock()
		return func() {}, nil
	}
	sub, err := b.nc.Subscribe(subj+"*", r.onMsg)
	if err != nil {
		r.state = stateGone
		r.mu.Unlock()
		b.forget(r)
		return nil, fmt.Errorf("natsbus: subscribe %s: %w", subj+"*", err)
	}
	r.sub, r.gen, r.state = sub, gen, stateActive
	r.mu.Unlock()
	if b.nc.IsConnected() {
		// The route is live for every relay once NATS has the SUB.
		if err := b.nc.FlushTimeout(b.o.claimTimeout); err != nil {
			b.log.Warn("route not confirmed by NATS yet", "device", deviceID, "error", err)
		}
	}
	r.announce()
	return func() { r.end(false) }, nil
}

// end stops r: replaced when a newer stream took over.
func (r *registration) end(replaced bool) {
	r.mu.Lock()
	if r.state == stateGone {
		r.mu.Unlock()
		return
	}
	r.state, r.replaced = stateGone, replaced
	sub := r.sub
	r.mu.Unlock()
	if sub != nil {
		// Drain: requests already delivered are still answered (with
		// "moved" or bus.ErrNoRoute) rather than dropped. While the
		// connection is down a drain sends no UNSUB and the subscription
		// could be resent on reconnect: unsubscribe at once instead.
		drain := sub.Drain
		if !r.b.nc.IsConnected() {
			drain = sub.Unsubscribe
		}
		if err := drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			r.b.log.Warn("unsubscribe failed", "device", r.dev, "error", err)
		}
	}
	r.b.forget(r)
	if replaced && r.onReplaced != nil {
		go r.onReplaced()
	}
}

func (b *Bus) forget(r *registration) {
	b.mu.Lock()
	if b.regs[r.dev] == r {
		delete(b.regs, r.dev)
	}
	b.mu.Unlock()
}

func (r *registration) announce() {
	r.mu.Lock()
	active, gen := r.state == stateActive, r.gen
	r.mu.Unlock()
	if !active {
		return
	}
	if err := r.b.publish(r.subj+"ann", "", appendRoute(kindAnnounce, gen, r.token)); err != nil {
		r.b.log.Warn("route announcement failed", "device", r.dev, "error", err)
	}
}

// reannounce runs after a reconnect: a relay that moved the device while
// this one was cut off either wins or makes this one yield.
func (b *Bus) reannounce() {
	b.mu.Lock()
	regs := make([]*registration, 0, len(b.regs))
	for _, r := range b.regs {
		regs = append(regs, r)
	}
	b.mu.Unlock()
	for _, r := range regs {
		r.announce()
	}
}

// newer reports whether route (g1, t1) beats (g2, t2).
func newer(g1 uint64, t1 string, g2 uint64, t2 string) bool {
	return g1 > g2 || g1 == g2 && t1 > t2
}

// onMsg handles the device's subjects; it runs on the subscription's
// goroutine and never blocks.
func (r *registration) onMsg(m *nats.Msg) {
	switch lastToken(m.Subject) {
	case "req":
		r.b.serveRequest(r, m)
	case "claim":
		kind, gen, tok, err := decodeRoute(m.Data)
		if err != nil || kind != kindClaim || tok == r.token {
			return
		}
		r.b.observe(gen)
		r.mu.Lock()
		mine := r.gen
		r.mu.Unlock()
		r.end(true) // the UNSUB is written before the answer
		if m.Reply != "" {
			m.Respond(appendRoute(kindYielded, mine, r.token))
		}
	case "ann":
		kind, gen, tok, err := decodeRoute(m.Data)
		if err != nil || kind != kindAnnounce || tok == r.token {
			return
		}
		r.b.observe(gen)
		r.mu.Lock()
		active, mine := r.state == stateActive, r.gen
		r.mu.Unlock()
		if !active {
			return
		}
		if newer(gen, tok, mine, r.token) {
			r.b.log.Info("route taken over by a newer stream", "device", r.dev)
			r.end(true)
		} else {
			r.announce()
		}
	}
}

// exchange is one request being served.
type exchange struct {
	b      *Bus
	id     string
	inbox  string // the caller's
	ctl    string // ours
	h      reqHeader
	ctx    context.Context
	cancel context.CancelCauseFunc
	credit chan struct{}

	mu         sync.Mutex
	timer      *time.Timer
	seq        uint64 // data frames sent
	sent       uint64 // their payload bytes
	ackSeq     uint64
	ackBytes   uint64
	heard      time.Time // the caller's last sign of life
	busy       bool      // a frame went out since the last tick
	callerDone bool      // recv returned true on the caller's side
	callerGone bool      // send the caller nothing more
	failErr    error     // reported in the end frame instead of the handler's error
	ended      bool
}

var errCallerGone = errors.New("natsbus: the caller went away")

func (b *Bus) serveRequest(r *registration, m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	h, payload, err := decodeRequest(m.Data)
	if err != nil {
		b.publish(m.Reply, "", appendFrame(nil, kindEnd, 0, encodeErr(fmt.Errorf("%w: %w", errBadRequest, err))))
		return
	}
	r.mu.Lock()
	state, replaced := r.state, r.replaced
	r.mu.Unlock()
	if state != stateActive {
		err := bus.ErrNoRoute
		if replaced {
			err = errMoved
		}
		b.publish(m.Reply, "", appendFrame(nil, kindEnd, 0, encodeErr(err)))
		return
	}
	req := new(desksidev1.RelayMessage)
	if err := proto.Unmarshal(payload, req); err != nil {
		b.publish(m.Reply, "", appendFrame(nil, kindEnd, 0, encodeErr(fmt.Errorf("%w: %w", errBadRequest, err))))
		return
	}
	x := &exchange{b: b, id: b.nextID(), inbox: m.Reply, h: h, credit: make(chan struct{}, 1), heard: time.Now()}
	x.ctl = b.ctl + x.id
	ctx := context.Background()
	var cancelTimeout context.CancelFunc = func() {}
	if h.timeout > 0 {
		ctx, cancelTimeout = context.WithTimeout(ctx, h.timeout)
	}
	x.ctx, x.cancel = context.WithCancelCause(ctx)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		cancelTimeout()
		b.publish(m.Reply, "", appendFrame(nil, kindEnd, 0, encodeErr(bus.ErrNoRoute)))
		return
	}
	b.exchanges[x.id] = x
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		defer cancelTimeout()
		x.run(r.h, req)
	}()
}

func (x *exchange) run(h bus.Handler, req *desksidev1.RelayMessage) {
	b := x.b
	defer func() {
		b.mu.Lock()
		delete(b.exchanges, x.id)
		b.mu.Unlock()
	}()
	x.mu.Lock()
	x.publishLocked(kindAccept, 0, nil)
	x.timer = time.AfterFunc(x.h.heartbeat, x.tick)
	x.mu.Unlock()

	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				b.log.Error("bus handler panicked", "panic", p)
				err = fmt.Errorf("natsbus: the serving relay's handler failed: %v", p)
			}
		}()
		return h(x.ctx, req, x.recv)
	}()

	cause := context.Cause(x.ctx)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.ended = true
	x.timer.Stop()
	x.cancel(nil)
	if x.callerDone || x.callerGone {
		return
	}
	switch {
	case x.failErr != nil:
		err = x.failErr
	case err != nil && errors.Is(cause, errBusClosed):
		err = fmt.Errorf("%w: %w", bus.ErrAgentGone, errBusClosed)
	}
	x.publishLocked(kindEnd, x.seq, encodeErr(err))
}

// recv is the Handler's recv: it forwards m to the caller, waiting for
// the window to open. It reports true once the caller wants no more.
func (x *exchange) recv(m *desksidev1.AgentMessage) bool {
	data, err := proto.Marshal(m)
	if err != nil {
		x.fail(fmt.Errorf("natsbus: marshal reply: %w", err))
		return false
	}
	if n, max := len(data)+frameOverhead, x.b.maxPayload(); n > max {
		x.fail(fmt.Errorf("%w: the device's %s reply is %d bytes, the NATS server's max_payload is %d", ErrTooLarge, bodyName(m), len(data), max))
		return false
	}
	for {
		x.mu.Lock()
		switch {
		case x.callerDone:
			x.mu.Unlock()
			return true
		case x.callerGone || x.failErr != nil || x.ctx.Err() != nil:
			// Drop it; the handler's select sees ctx end and tells the
			// agent.
			x.mu.Unlock()
			return false
		}
		inMsgs, inBytes := x.seq-x.ackSeq, x.sent-x.ackBytes
		if inMsgs == 0 || inMsgs < x.h.winMsgs && inBytes+uint64(len(data)) <= x.h.winBytes {
			x.seq++
			x.sent += uint64(len(data))
			x.publishLocked(kindData, x.seq, data)
			x.mu.Unlock()
			return false
		}
		x.mu.Unlock()
		select {
		case <-x.credit:
		case <-x.ctx.Done():
		}
	}
}

// publishLocked sends a frame to the caller; x.mu is held, which keeps
// frames in order.
func (x *exchange) publishLocked(kind byte, seq uint64, payload []byte) {
	if x.callerGone {
		return
	}
	x.busy = true
	if err := x.b.publish(x.inbox, x.ctl, appendFrame(make([]byte, 0, len(payload)+frameOverhead), kind, seq, payload)); err != nil {
		x.b.log.Warn("cannot reach the caller", "error", err)
		x.callerGone = true
		x.cancel(fmt.Errorf("%w: %w", errCallerGone, err))
	}
}

func (x *exchange) fail(err error) {
	x.mu.Lock()
	if x.failErr == nil {
		x.failErr = err
	}
	x.mu.Unlock()
	x.cancel(err)
}

func (x *exchange) tick() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ended || x.callerGone || x.callerDone {
		return
	}
	if silent := time.Since(x.heard); silent > time.Duration(x.h.missed)*x.h.heartbeat {
		x.callerGone = true
		x.cancel(fmt.Errorf("%w: silent for %s", errCallerGone, silent.Round(time.Millisecond)))
		return
	}
	if !x.busy {
		x.publishLocked(kindHeartbeat, x.seq, nil)
	}
	x.busy = false
	x.timer.Reset(x.h.heartbeat)
}

// onControl handles frames from callers of exchanges this Bus serves; it
// runs on the subscription's goroutine and never blocks.
func (b *Bus) onControl(m *nats.Msg) {
	b.mu.Lock()
	x := b.exchanges[lastToken(m.Subject)]
	b.mu.Unlock()
	if x == nil {
		return
	}
	if isNoResponders(m) { // our frames reach no inbox: the caller is gone
		x.mu.Lock()
		x.callerGone = true
		x.mu.Unlock()
		x.cancel(fmt.Errorf("%w: its inbox is gone", errCallerGone))
		return
	}
	if len(m.Data) == 0 {
		return
	}
	switch m.Data[0] {
	case kindAck:
		seq, n, err := decodeAck(m.Data)
		if err != nil {
			return
		}
		x.mu.Lock()
		x.heard = time.Now()
		if seq > x.ackSeq && seq <= x.seq {
			x.ackSeq = seq
		}
		if n > x.ackBytes && n <= x.sent {
			x.ackBytes = n
		}
		x.mu.Unlock()
		select {
		case x.credit <- struct{}{}:
		default:
		}
	case kindDone:
		x.mu.Lock()
		x.callerDone = true
		x.mu.Unlock()
		x.cancel(bus.ErrCallerDone)
	case kindCancel:
		x.mu.Lock()
		x.callerGone = true
		x.mu.Unlock()
		x.cancel(context.Canceled)
	}
}
