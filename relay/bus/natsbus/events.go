package natsbus

import (
	"errors"
	"fmt"

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
