package store

import (
	"context"
	"time"
)

// Outbox kinds and states (relay/notify).
const (
	OutboxMail    = "mail"
	OutboxWebhook = "webhook"

	OutboxPending = "pending" // waiting for its (next) attempt
	OutboxSent    = "sent"    // delivered
	OutboxFailed  = "failed"  // given up; LastError says why
)

// OutboxStore keeps notifications until they have left the relay: each
// mail and each webhook delivery is one item, written when the ticket
// change that causes it is made, claimed by one relay's worker at a time
// (several relays may share a store), and marked sent or failed with the
// last error. Items survive a relay restart.
type OutboxStore interface {
	// AddOutbox stores items as pending (Status, lease and attempts are
	// ignored) in one transaction and returns them with their IDs.
	AddOutbox(ctx context.Context, items []OutboxItem) ([]OutboxItem, error)
	// ClaimOutbox leases up to limit pending items that are due (NextAt
	// at or before now) and not leased by anyone at now, oldest NextAt
	// first (then by ID), to owner until now+lease, and returns them. Two
	// callers never get the same item while its lease runs, on any number
	// of relays.
	ClaimOutbox(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]OutboxItem, error)
	// FinishOutbox records an attempt on an item owner leased: its Status,
	// Attempts, NextAt, LastError, LastStatus and UpdatedAt, and ends the
	// lease. ErrNotFound if owner no longer holds the lease (it ran out
	// and another worker took the item) or there is no such item.
	FinishOutbox(ctx context.Context, owner string, it OutboxItem) error
	// ListOutbox returns up to limit items of kind (all kinds when
	// empty) in one of statuses (any status when none), newest first (by
	// CreatedAt, then ID).
	ListOutbox(ctx context.Context, kind string, limit int, statuses ...string) ([]OutboxItem, error)
	// RetryOutbox puts a failed item back to pending, due at now, with
	// its attempts counted from zero again (LastError stays until the
	// next attempt), and returns it. ErrNotFound if there is no failed
	// item id.
	RetryOutbox(ctx context.Context, id int64, now time.Time) (OutboxItem, error)
	// PruneOutbox deletes sent and failed items last updated before
	// before, and returns how many.
	PruneOutbox(ctx context.Context, before time.Time) (int64, error)
}

// OutboxItem is one notification waiting to leave, or that left.
type OutboxItem struct {
	ID   int64
	Kind string // OutboxMail, OutboxWebhook
	// Target is the recipient's address (mail) or the webhook's id.
	Target string
	Ticket string // the ticket's code
	Event  string // the audit action that caused it
	// Payload is what notify needs to make the attempt (opaque).
	Payload    []byte
	Status     string
	Attempts   int
	NextAt     time.Time
	LastError  string
	LastStatus int // a webhook's last HTTP status, 0 for none
	CreatedAt  time.Time
	UpdatedAt  time.Time
	LeaseOwner string
	LeaseUntil time.Time
}
