package natsbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/bus"
)

// maxMoves bounds how often Stream follows a route that moved.
const maxMoves = 3

// Stream implements bus.Bus.
func (b *Bus) Stream(ctx context.Context, deviceID string, req *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
	subj, err := b.devSubject(deviceID)
	if err != nil {
		return err
	}
	var payload []byte
	for attempt := 0; ; attempt++ {
		b.mu.Lock()
		closed, r := b.closed, b.regs[deviceID]
		b.mu.Unlock()
		if closed {
			return ErrClosed
		}
		if r != nil { // the agent's stream is on this relay
			r.mu.Lock()
			live := r.state != stateGone
			r.mu.Unlock()
			if live {
				return r.h(ctx, req, recv)
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !b.nc.IsConnected() {
			return fmt.Errorf("%w (%s)", ErrDisconnected, b.nc.Status())
		}
		if payload == nil {
			if payload, err = proto.Marshal(req); err != nil {
				return fmt.Errorf("natsbus: marshal request: %w", err)
			}
			if n, max := len(payload)+frameOverhead, b.maxPayload(); n > max {
				return fmt.Errorf("%w: the %s request for %s is %d bytes, the NATS server's max_payload is %d", ErrTooLarge, bodyName(req), deviceID, len(payload), max)
			}
		}
		h := reqHeader{heartbeat: b.o.heartbeat, missed: b.o.missed, winMsgs: uint64(b.o.winMsgs), winBytes: uint64(b.o.winBytes)}
		if dl, ok := ctx.Deadline(); ok {
			h.timeout = max(time.Until(dl), time.Millisecond) + time.Millisecond - 1
		}
		err := b.streamOnce(ctx, subj+"req", h, appendRequest(make([]byte, 0, len(payload)+frameOverhead), h, payload), recv)
		if !errors.Is(err, errMoved) {
			return err
		}
		if attempt+1 == maxMoves {
			return fmt.Errorf("%w: the route kept moving", bus.ErrNoRoute)
		}
	}
}

// call is one exchange this Bus started.
type call struct {
	b      *Bus
	id     string
	h      reqHeader
	notify chan struct{} // cap 1: something is queued, or err is set

	mu       sync.Mutex
	timer    *time.Timer
	q        []event
	qBytes   int
	lastSeq  uint64 // last data frame queued
	ctl      string // the serving relay's control subject
	accepted bool
	heard    time.Time
	err      error // terminal, after q is consumed
	finished bool
	consumed uint64 // data frames and bytes recv has taken
	conBytes uint64
	ackSeq   uint64 // what the last ack said
	ackBytes uint64
}

type event struct {
	end  bool
	data []byte
}

func (b *Bus) streamOnce(ctx context.Context, subj string, h reqHeader, frame []byte, recv func(*desksidev1.AgentMessage) bool) error {
	c := &call{b: b, id: b.nextID(), h: h, notify: make(chan struct{}, 1), heard: time.Now()}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.calls[c.id] = c
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.calls, c.id)
		b.mu.Unlock()
	}()
	c.mu.Lock()
	c.timer = time.AfterFunc(h.heartbeat, c.tick)
	c.mu.Unlock()
	if err := b.publish(subj, b.inbox+c.id, frame); err != nil {
		c.finish(0)
		if errors.Is(err, nats.ErrMaxPayload) {
			return fmt.Errorf("%w: %w", ErrTooLarge, err)
		}
		return fmt.Errorf("natsbus: send request: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			c.finish(kindCancel)
			return ctx.Err()
		case <-c.notify:
		}
		for {
			ev, err := c.next()
			if err != nil {
				c.finish(kindCancel)
				return err
			}
			if ev == nil {
				break
			}
			if ev.end {
				c.finish(0)
				return decodeErr(ev.data)
			}
			m := new(desksidev1.AgentMessage)
			if err := proto.Unmarshal(ev.data, m); err != nil {
				c.finish(kindCancel)
				return fmt.Errorf("%w: unreadable reply: %w", bus.ErrAgentGone, err)
			}
			if recv(m) {
				c.finish(kindDone)
				return nil
			}
			if err := ctx.Err(); err != nil {
				c.finish(kindCancel)
				return err
			}
			c.consume(len(ev.data))
		}
	}
}

// next pops the next event; at the end of the queue it returns the
// call's terminal error, if any.
func (c *call) next() (*event, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.q) > 0 {
		ev := c.q[0]
		c.q[0] = event{}
		c.q = c.q[1:]
		c.qBytes -= len(ev.data)
		return &ev, nil
	}
	return nil, c.err
}

// consume acknowledges a data frame recv took, when half a window has
// gone by since the last ack, or an eighth of one once everything received
// is consumed (so a large frame after a smaller one does not wait for the
// next heartbeat's ack to fit in the window).
func (c *call) consume(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.consumed++
	c.conBytes += uint64(n)
	msgs, bytes := c.consumed-c.ackSeq, c.conBytes-c.ackBytes
	drained := len(c.q) == 0
	if msgs >= max(1, c.h.winMsgs/2) || bytes >= c.h.winBytes/2 ||
		drained && (msgs >= max(1, c.h.winMsgs/8) || bytes >= c.h.winBytes/8) {
		c.ackLocked()
	}
}

func (c *call) ackLocked() {
	if c.ctl == "" {
		return
	}
	c.ackSeq, c.ackBytes = c.consumed, c.conBytes
	c.b.publish(c.ctl, c.b.inbox+c.id, appendAck(nil, c.consumed, c.conBytes))
}

// finish ends the call, telling the serving relay kind (done or cancel)
// if it is known yet; if not, its first frame for this call will be
// answered with cancel by onReply.
func (c *call) finish(kind byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return
	}
	c.finished = true
	c.timer.Stop()
	if kind != 0 && c.ctl != "" {
		c.b.publish(c.ctl, "", []byte{kind})
	}
}

func (c *call) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.wake()
}

func (c *call) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// tick runs every heartbeat period: it gives up on a silent serving relay
// and proves to it that the caller is alive (recv may be blocked for
// long, say behind a slow console).
func (c *call) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished || c.err != nil {
		return
	}
	limit := time.Duration(c.h.missed) * c.h.heartbeat
	if silent := time.Since(c.heard); silent > limit {
		if c.accepted {
			c.err = fmt.Errorf("%w: the serving relay went silent for %s", bus.ErrAgentGone, silent.Round(time.Millisecond))
		} else {
			c.err = fmt.Errorf("%w: the serving relay did not take the request within %s", bus.ErrAgentGone, silent.Round(time.Millisecond))
		}
		c.wake()
		return
	}
	c.ackLocked()
	c.timer.Reset(c.h.heartbeat)
}

// onReply handles frames sent to this Bus's inboxes; it runs on the
// subscription's goroutine and never blocks.
func (b *Bus) onReply(m *nats.Msg) {
	b.mu.Lock()
	c := b.calls[lastToken(m.Subject)]
	b.mu.Unlock()
	noResp := isNoResponders(m)
	if c == nil {
		// A finished or abandoned call: stop whoever still serves it.
		if !noResp && m.Reply != "" && len(m.Data) > 0 && m.Data[0] != kindEnd {
			b.publish(m.Reply, "", []byte{kindCancel})
		}
		return
	}
	if noResp {
		c.mu.Lock()
		if c.err == nil {
			if c.accepted { // our ack found no exchange: its relay is gone
				c.err = fmt.Errorf("%w: the serving relay is gone", bus.ErrAgentGone)
			} else {
				c.err = bus.ErrNoRoute
			}
		}
		c.mu.Unlock()
		c.wake()
		return
	}
	kind, seq, payload, err := decodeFrame(m.Data)
	c.mu.Lock()
	defer c.wake()
	defer c.mu.Unlock()
	if c.finished || c.err != nil {
		return
	}
	if err != nil {
		c.err = fmt.Errorf("%w: %w", bus.ErrAgentGone, err)
		return
	}
	if m.Reply != "" {
		switch c.ctl {
		case "":
			c.ctl = m.Reply
		case m.Reply:
		default:
			// A second relay answered (routes briefly overlapped after a
			// NATS partition): the first one keeps the exchange.
			b.publish(m.Reply, "", []byte{kindCancel})
			return
		}
	}
	c.accepted = true
	c.heard = time.Now()
	switch kind {
	case kindAccept:
	case kindHeartbeat:
		if seq > c.lastSeq {
			c.err = fmt.Errorf("%w: %d replies lost in transit", bus.ErrAgentGone, seq-c.lastSeq)
		}
	case kindData:
		if seq != c.lastSeq+1 {
			c.err = fmt.Errorf("%w: replies lost in transit (got %d after %d)", bus.ErrAgentGone, seq, c.lastSeq)
			return
		}
		c.lastSeq = seq
		c.q = append(c.q, event{data: payload})
		c.qBytes += len(payload)
		if c.qBytes > int(c.h.winBytes)+2*b.maxPayload() || uint64(len(c.q)) > c.h.winMsgs+2 {
			c.err = fmt.Errorf("%w: the serving relay ignored flow control", bus.ErrAgentGone)
		}
	case kindEnd:
		if seq != c.lastSeq {
			c.err = fmt.Errorf("%w: replies lost in transit (%d sent, %d received)", bus.ErrAgentGone, seq, c.lastSeq)
			return
		}
		c.q = append(c.q, event{end: true, data: payload})
	}
}
