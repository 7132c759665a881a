package natsbus

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// Device changes (online, offline, new inventory) are announced to every
// relay on "deskside.<prefix>.evt.device" with the device ID as the body,
// so each relay can tell its own console watchers; the state itself is in
// the shared store. Announcements are best effort (NATS core): a relay that
// misses one shows the change on its watchers' next list.

// maxEventID bounds an announced device ID.
const maxEventID = 256

func (b *Bus) eventSubject() string { return b.base + "evt.device" }

// NotifyDevice announces a change of deviceID to every relay, this one
// included (through OnDevice).
func (b *Bus) NotifyDevice(deviceID string) error {
	if len(deviceID) == 0 || len(deviceID) > maxEventID {
		return fmt.Errorf("natsbus: device id of %d bytes cannot be announced", len(deviceID))
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return b.nc.Publish(b.eventSubject(), []byte(deviceID))
}

// OnDevice calls f (in one goroutine, in order) with the ID of every device
// change announced by any relay until stop is called.
func (b *Bus) OnDevice(f func(deviceID string)) (stop func(), err error) {
	sub, err := b.nc.Subscribe(b.eventSubject(), func(m *nats.Msg) {
		if len(m.Data) == 0 || len(m.Data) > maxEventID {
			b.log.Warn("natsbus: malformed device announcement ignored", "bytes", len(m.Data))
			return
		}
		f(string(m.Data))
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: subscribe to device announcements: %w", err)
	}
	return func() {
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			b.log.Debug("natsbus: unsubscribe device announcements", "error", err)
		}
	}, nil
}

// Ticket events (filed, changed) are announced the same way on
// "deskside.<prefix>.evt.ticket": the body is the event's kind, a space
// and the ticket's code; the ticket itself is in the shared store.

func (b *Bus) ticketSubject() string { return b.base + "evt.ticket" }

// maxTicketEvent bounds an announced ticket event.
const maxTicketEvent = 64

// NotifyTicket announces a ticket event (kind "created" or "updated") to
// every relay, this one included (through OnTicket).
func (b *Bus) NotifyTicket(kind, code string) error {
	msg := kind + " " + code
	if kind == "" || code == "" || strings.ContainsRune(kind, ' ') || len(msg) > maxTicketEvent {
		return fmt.Errorf("natsbus: ticket event %q cannot be announced", msg)
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return b.nc.Publish(b.ticketSubject(), []byte(msg))
}

// OnTicket calls f (in one goroutine, in order) with every ticket event
// announced by any relay until stop is called.
func (b *Bus) OnTicket(f func(kind, code string)) (stop func(), err error) {
	sub, err := b.nc.Subscribe(b.ticketSubject(), func(m *nats.Msg) {
		kind, code, ok := strings.Cut(string(m.Data), " ")
		if !ok || kind == "" || code == "" || len(m.Data) > maxTicketEvent {
			b.log.Warn("natsbus: malformed ticket announcement ignored", "bytes", len(m.Data))
			return
		}
		f(kind, code)
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: subscribe to ticket announcements: %w", err)
	}
	return func() {
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			b.log.Debug("natsbus: unsubscribe ticket announcements", "error", err)
		}
	}, nil
}
