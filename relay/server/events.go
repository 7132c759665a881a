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
}

// subscription is one watcher. A watcher that falls behind by more than
// its buffer is dropped (lagged is set) rather than slowing the relay.
type subscription[T any] struct {
	ch     chan T
	lagged bool
}

func newHub[T any]() *hub[T] { return &hub[T]{subs: make(map[*subscription[T]]struct{})} }

func (h *hub[T]) subscribe() *subscription[T] {
	sub := &subscription[T]{ch: make(chan T, 256)}
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
		delete(h.subs, sub)
		close(sub.ch)
	}
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
		select {
		case sub.ch <- v:
		default:
			sub.lagged = true
			delete(h.subs, sub)
			close(sub.ch)
		}
	}
}

func (h *hub[T]) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		delete(h.subs, sub)
		close(sub.ch)
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
