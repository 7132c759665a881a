package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// QueueLimit is how many outbox items Queue returns at most.
const QueueLimit = 200

// ErrNoItem: no failed outbox item has that id.
var ErrNoItem = errors.New("notify: no failed outbox item with that id (`deskside notify queue --failed`)")

// QueueItem is one mail or webhook delivery in the outbox, as an admin
// sees it.
type QueueItem struct {
	ID     int64
	Kind   string // store.OutboxMail, store.OutboxWebhook
	Status string // store.OutboxPending, OutboxFailed, OutboxSent
	// Target is the recipient's address (mail) or the webhook's id.
	Target   string
	Ticket   string
	Event    string
	Template string // a mail's template
	Attempts int
	// NextAt is when a pending item is attempted next.
	NextAt     time.Time
	LastError  string
	LastStatus int
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

func queueItem(it store.OutboxItem) QueueItem {
	q := QueueItem{ID: it.ID, Kind: it.Kind, Status: it.Status, Target: it.Target, Ticket: it.Ticket, Event: it.Event,
		Attempts: it.Attempts, NextAt: it.NextAt, LastError: it.LastError, LastStatus: it.LastStatus, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}
	if it.Kind == store.OutboxMail {
		var p mailPayload
		if json.Unmarshal(it.Payload, &p) == nil {
			q.Template = p.Template
		}
	}
	return q
}

// Queue returns up to QueueLimit outbox items of kind (mail, webhook;
// empty: both) in one of statuses (none: pending and failed, what has
// not left), newest first.
func (n *Notifier) Queue(ctx context.Context, kind string, statuses []string) ([]QueueItem, error) {
	if kind != "" && kind != store.OutboxMail && kind != store.OutboxWebhook {
		return nil, fmt.Errorf("%w: kind %q: mail or webhook", ErrInvalid, kind)
	}
	for _, st := range statuses {
		if st != store.OutboxPending && st != store.OutboxFailed && st != store.OutboxSent {
			return nil, fmt.Errorf("%w: state %q: pending, failed or sent", ErrInvalid, st)
		}
	}
	if len(statuses) == 0 {
		statuses = []string{store.OutboxPending, store.OutboxFailed}
	}
	if n.o.Outbox == nil {
		return nil, nil
	}
	items, err := n.o.Outbox.ListOutbox(ctx, kind, QueueLimit, statuses...)
	if err != nil {
		return nil, err
	}
	out := make([]QueueItem, 0, len(items))
	for _, it := range items {
		out = append(out, queueItem(it))
	}
	return out, nil
}

// Retry puts a failed item back to pending, due now with the whole
// backoff schedule again, and wakes the workers. ErrNoItem if there is
// no failed item id.
func (n *Notifier) Retry(ctx context.Context, id int64) (QueueItem, error) {
	if n.o.Outbox == nil {
		return QueueItem{}, ErrNoItem
	}
	it, err := n.o.Outbox.RetryOutbox(ctx, id, n.o.Now())
	if errors.Is(err, store.ErrNotFound) {
		return QueueItem{}, ErrNoItem
	}
	if err != nil {
		return QueueItem{}, err
	}
	n.wake()
	return queueItem(it), nil
}
