package tickets

import (
	"context"
	"fmt"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/store"
)

// MaxChatBytes bounds a chat line.
const MaxChatBytes = 4 << 10

// RequesterAuthor is how a timeline names a device's local user who filed
// a ticket through Get help.
func RequesterAuthor(login string) string { return "requester <" + login + ">" }

func chatLine(body string) (string, error) {
	if len(body) > MaxChatBytes {
		return "", invalid("the chat line is %d bytes; at most %d: send a reply for longer text", len(body), MaxChatBytes)
	}
	b, err := text("chat line", body)
	if err != nil {
		return "", err
	}
	if b == "" {
		return "", invalid("the chat line is empty")
	}
	return b, nil
}

// Chat adds a technician's live chat line: public, like a reply (it
// counts as the first response and opens a new ticket).
func (s *Service) Chat(ctx context.Context, a Actor, code, body string) (store.Ticket, error) {
	b, err := chatLine(body)
	if err != nil {
		return store.Ticket{}, err
	}
	return s.change(ctx, a, code, func(t *store.Ticket, now time.Time) ([]store.TicketEntry, error) {
		if err := notMerged(*t); err != nil {
			return nil, err
		}
		if err := a.mustWork(*t, "chat on"); err != nil {
			return nil, err
		}
		if !active(t.Status) {
			return nil, fmt.Errorf("%w: %s is %s; reopen it first (`deskside ticket status %s open`)",
				ErrState, t.Code, StatusName(t.Status), t.Code)
		}
		out := []store.TicketEntry{{Kind: kind(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_CHAT), Body: b}}
		if t.FirstResponseAt.IsZero() {
			t.FirstResponseAt = now
		}
		if t.Status == statusNew {
			out = append(out, setStatus(t, statusOpen, now, ""))
		}
		return out, nil
	})
}

// UserMessage adds the reply or, chat, the chat line of the local user
// who filed the ticket through Get help (the caller checked they did). A
// reply to a ticket pending the user or resolved opens it again; a closed
// or merged ticket refuses.
func (s *Service) UserMessage(ctx context.Context, code, login, body string, chat bool) (store.Ticket, error) {
	var b string
	var err error
	if chat {
		b, err = chatLine(body)
	} else {
		b, err = text("reply", body)
		if err == nil && b == "" {
			err = invalid("the reply is empty")
		}
	}
	if err != nil {
		return store.Ticket{}, err
	}
	return s.change(ctx, Actor{Name: RequesterAuthor(login)}, code, func(t *store.Ticket, now time.Time) ([]store.TicketEntry, error) {
		if err := notMerged(*t); err != nil {
			return nil, err
		}
		if t.Status == statusClosed {
			return nil, fmt.Errorf("%w: %s is closed; file a new request, or ask a technician to reopen it", ErrState, t.Code)
		}
		k := desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_REPLY
		if chat {
			k = desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_CHAT
		}
		out := []store.TicketEntry{{Kind: kind(k), Body: b}}
		if !chat && (t.Status == statusPending || t.Status == statusResolved) {
			out = append(out, setStatus(t, statusOpen, now, "the requester answered"))
		}
		return out, nil
	})
}
