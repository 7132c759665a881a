package server

import (
	"context"
	"sync"
)

// hub fans events out to the watch streams on this relay: device changes
// to WatchDevices, ticket events to WatchTickets. With several relays, a
// bus that implements DeviceNotifier or TicketNotifier (NATS) carries them
// between relays first.
type hub[T any] struct {
	mu     sync.Mutex
	subs   map[*subscription[T]]struct{}
	closed bool
	// key, when set, conflates a slow watcher's events: once its buffer
	// is full, the events waiting for room keep only the latest per key
	// (a device's newest state), so a burst (10,000 agents reconnecting)
	// neither cuts the watcher off nor grows without bound.
	key func(T) string
	// maxWaiting bounds the distinct keys waiting per watcher; past it
	// the watcher is cut off (lagged) as an unkeyed one is past its buffer.
	maxWaiting int
}

// subscription is one watcher. Without a key, a watcher that falls behind
// by more than its buffer is dropped (lagged is set) rather than slowing
// the relay; with one, its events wait conflated by key (waiting).
type subscription[T any] struct {
	ch     chan T
	lagged bool
	// waiting holds events that found ch full, latest per key, in the
	// order their keys first waited; guarded by the hub's mu.
	waiting map[string]T
	order   []string
}

// watchBuffer is each watcher's channel size; maxWatchWaiting bounds the
// devices whose newest state waits for a slow device watcher (more than
// a fleet of 50,000 changing at once cuts it off).
const (
	watchBuffer     = 256
	maxWatchWaiting = 50000
)

func newHub[T any]() *hub[T] { return &hub[T]{subs: make(map[*subscription[T]]struct{})} }

// newConflatingHub is a hub whose slow watchers' events conflate by key,
// at most maxWaiting distinct keys each.
func newConflatingHub[T any](key func(T) string, maxWaiting int) *hub[T] {
	h := newHub[T]()
	h.key, h.maxWaiting = key, maxWaiting
	return h
}

func (h *hub[T]) subscribe() *subscription[T] {
	sub := &subscription[T]{ch: make(chan T, watchBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(sub.ch)
		return sub
	}
	h.subs[sub] = struct{}{}
	return sub
}

func (h *hub[T]) unsubscribe(sub *subscription[T]) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[sub]; ok {
		h.drop(sub)
	}
}

// drop ends sub (h.mu held).
func (h *hub[T]) drop(sub *subscription[T]) {
	delete(h.subs, sub)
	close(sub.ch)
	sub.waiting, sub.order = nil, nil
}

func (h *hub[T]) active() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) > 0
}

func (h *hub[T]) publish(v T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		if len(sub.order) == 0 {
			select {
			case sub.ch <- v:
				continue
			default:
			}
		}
		if h.key == nil {
			sub.lagged = true
			h.drop(sub)
			continue
		}
		k := h.key(v)
		if _, ok := sub.waiting[k]; !ok {
			if len(sub.order) >= h.maxWaiting {
				sub.lagged = true
				h.drop(sub)
				continue
			}
			if sub.waiting == nil {
				sub.waiting = map[string]T{}
			}
			sub.order = append(sub.order, k)
		}
		sub.waiting[k] = v
	}
}

// received is called by a watcher after each event it took from sub.ch:
// it moves waiting events into the room that made.
func (h *hub[T]) received(sub *subscription[T]) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(sub.order) > 0 {
		k := sub.order[0]
		select {
		case sub.ch <- sub.waiting[k]:
			delete(sub.waiting, k)
			sub.order[0] = ""
			sub.order = sub.order[1:]
		default:
			return
		}
	}
	sub.order = nil // let the backing array go once drained
}

func (h *hub[T]) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		h.drop(sub)
	}
}

// DeviceNotifier is a bus that also announces device changes to every
// relay (relay/bus/natsbus): a Config.Bus that implements it carries them,
// and each relay then publishes the changes it hears to its watchers.
type DeviceNotifier interface {
	NotifyDevice(deviceID string) error
	OnDevice(f func(deviceID string)) (stop func(), err error)
}

// deviceChanged tells watchers about a device's new state: on every relay
// through the bus when it can announce changes, else on this one.
func (s *Server) deviceChanged(ctx context.Context, id string) {
	if s.notifier != nil {
		err := s.notifier.NotifyDevice(id)
		if err == nil {
			return // announced to every relay, this one included
		}
		s.log.Warn("device change not announced to the other relays", logKeyDevice, id, logKeyError, err)
	}
	s.publishDevice(ctx, id)
}

// publishDevice sends a device's current state to this relay's watchers.
func (s *Server) publishDevice(ctx context.Context, id string) {
	if !s.events.active() {
		return
	}
	d, err := s.store.GetDevice(context.WithoutCancel(ctx), id)
	if err != nil {
		s.log.Warn("device change not published", logKeyDevice, id, logKeyError, err)
		return
	}
	s.events.publish(deviceProto(d))
}
