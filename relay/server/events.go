package server

import (
	"context"
	"sync"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// hub fans device changes out to WatchDevices streams on this relay.
// With several relays, a bus that implements DeviceNotifier (NATS) carries
// the changes between them first.
type hub struct {
	mu     sync.Mutex
	subs   map[*subscription]struct{}
	closed bool
}

// subscription is one watcher. A watcher that falls behind by more than
// its buffer is dropped (lagged is set) rather than slowing the relay.
type subscription struct {
	ch     chan *desksidev1.Device
	lagged bool
}

func newHub() *hub { return &hub{subs: make(map[*subscription]struct{})} }

func (h *hub) subscribe() *subscription {
	sub := &subscription{ch: make(chan *desksidev1.Device, 256)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(sub.ch)
		return sub
	}
	h.subs[sub] = struct{}{}
	return sub
}

func (h *hub) unsubscribe(sub *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[sub]; ok {
		delete(h.subs, sub)
		close(sub.ch)
	}
}

func (h *hub) active() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) > 0
}

func (h *hub) publish(d *desksidev1.Device) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		select {
		case sub.ch <- d:
		default:
			sub.lagged = true
			delete(h.subs, sub)
			close(sub.ch)
		}
	}
}

func (h *hub) close() {
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
