package store

import (
	"context"
	"time"
)

// HelpStore is Get help (package relay/helprequests): which tickets a
// device's local user filed, the files kept with tickets, and the
// articles that solved a problem.
type HelpStore interface {
	// PutHelpRequest records that r.Ticket was filed from r.DeviceID by
	// r.Login and keeps files with it, atomically. ErrExists if the
	// ticket already has a help request.
	PutHelpRequest(ctx context.Context, r HelpRequest, files []TicketAttachment) error
	// HelpRequest returns the help request of a ticket, or ErrNotFound.
	HelpRequest(ctx context.Context, ticket string) (HelpRequest, error)
	// HelpRequestsOf returns the help requests filed from deviceID by
	// login, newest first, at most limit (0: all).
	HelpRequestsOf(ctx context.Context, deviceID, login string, limit int) ([]HelpRequest, error)
	// TicketAttachments returns the files kept with a ticket, oldest
	// first; Data only when withData.
	TicketAttachments(ctx context.Context, ticket string, withData bool) ([]TicketAttachment, error)
	// ArticleHelped records that article id solved a user's problem and
	// returns how many times it has.
	ArticleHelped(ctx context.Context, id int64, deviceID, login string, at time.Time) (int64, error)
	// ArticleHelpedCount returns how many times article id solved a
	// user's problem.
	ArticleHelpedCount(ctx context.Context, id int64) (int64, error)
}

// HelpRequest is a ticket filed through Get help.
type HelpRequest struct {
	Ticket    string
	DeviceID  string
	Login     string
	CreatedAt time.Time
}

// TicketAttachment is a file kept with a ticket.
type TicketAttachment struct {
	ID          int64
	Ticket      string
	Name        string
	ContentType string
	Size        int64
	Data        []byte
	CreatedAt   time.Time
}
