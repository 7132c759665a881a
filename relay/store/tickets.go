package store

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"
)

// ErrConflict is returned by UpdateTicket when the ticket changed since it
// was read (its Version moved on): read it again and retry.
var ErrConflict = errors.New("store: changed meanwhile")

// TicketStore is the help desk's tickets (package relay/tickets decides
// what may change; the store makes each change atomic and searchable).
type TicketStore interface {
	// CreateTicket stores a new ticket with its first timeline entries and
	// returns it with ID, Version (1) and the entries' ids set. ErrExists
	// if the code is taken (the caller draws another).
	CreateTicket(ctx context.Context, t Ticket, entries []TicketEntry) (Ticket, error)
	// GetTicket returns the ticket with this code (exactly as stored) or
	// ErrNotFound.
	GetTicket(ctx context.Context, code string) (Ticket, error)
	// UpdateTicket replaces the ticket t.ID's fields (all but ID, Code,
	// Subject, Description, CreatedAt, CreatedBy and Snapshot) and appends entries to its
	// timeline, atomically, if its stored Version is still t.Version; the
	// stored Version becomes t.Version+1 and the ticket is returned as
	// stored. ErrConflict if the version moved on, ErrNotFound if there is
	// no such ticket.
	UpdateTicket(ctx context.Context, t Ticket, entries []TicketEntry) (Ticket, error)
	// TicketEntries returns a ticket's timeline, oldest first (by time,
	// then id).
	TicketEntries(ctx context.Context, ticketID int64) ([]TicketEntry, error)
	// ListTickets returns the tickets f selects and how many match
	// (ignoring paging), each with DeviceHostname and DeviceGroup set.
	// Without Search they come most urgent first
	// (priority descending), then oldest first, then by id; with Search,
	// tickets whose subject has every word first, then by relevance, then
	// newest first.
	ListTickets(ctx context.Context, f TicketFilter) ([]Ticket, int64, error)
}

// Ticket is one help-desk ticket. Priority, Status and Tier hold the
// values of the desksidev1 enums and the tier number.
type Ticket struct {
	ID             int64
	Code           string
	RequesterName  string
	RequesterEmail string
	DeviceID       string
	Subject        string
	Description    string
	Category       string
	Priority       int
	Status         int
	Tier           int
	Assignee       string
	CreatedBy      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// FirstResponseAt is the first public reply by a technician.
	FirstResponseAt time.Time
	ResolvedAt      time.Time
	ClosedAt        time.Time
	// MergedInto is the code of the ticket this one duplicates.
	MergedInto string
	// Snapshot is the device's state when the ticket was filed (opaque;
	// nil for none). ListTickets leaves it out (HasSnapshot says whether
	// there is one).
	Snapshot    []byte
	HasSnapshot bool
	// Version counts the ticket's updates (optimistic locking).
	Version int64
	// DeviceHostname and DeviceGroup are the hostname and group of the
	// device DeviceID names, set by ListTickets only (one lookup for the
	// page) and empty when the relay has no such device.
	DeviceHostname string
	DeviceGroup    string
}

// TicketEntry is one line of a ticket's timeline. Kind is a value of
// desksidev1.TicketEntryKind. Every entry's Body is searched with the
// ticket (replies, notes, reasons).
type TicketEntry struct {
	ID       int64
	TicketID int64
	Time     time.Time
	Author   string
	Kind     int
	Body     string
	From, To string
	// A linked audit record: kind, sequence number, action and target.
	LinkKind   string
	LinkSeq    int64
	LinkAction string
	LinkTarget string
}

// TicketFilter selects tickets. Zero values match everything.
type TicketFilter struct {
	Statuses   []int
	Priorities []int
	Category   string // exact, case-insensitive
	DeviceID   string
	// Assignee matches exactly; Unassigned keeps tickets with none.
	Assignee   string
	Unassigned bool
	Tier       int
	// Groups, when not nil, keeps tickets about no device and those whose
	// device is in one of the groups (a technician's device scope). A
	// ticket whose device was removed is kept.
	Groups []string
	// Search is words (see SearchTerms) all of which must begin a word of
	// the subject, the description or an entry's body.
	Search string
	Limit  int // 0: no limit
	Offset int
	// CountLimit, when positive, stops the count at that many: the total
	// ListTickets returns is min(matches, CountLimit). A queue shows
	// "10,000+" rather than counting every match on every call.
	CountLimit int
}

// maxSearchTerms and maxTermRunes bound a search.
const (
	maxSearchTerms = 16
	maxTermRunes   = 64
)

// SearchTerms splits a search into the words both backends look for:
// runs of letters and digits, lower-cased, at most 16 of at most 64
// runes (longer ones are cut). Anything else separates words, so no
// query syntax reaches a backend.
func SearchTerms(s string) []string { return terms(s, maxSearchTerms) }

// SearchText is the text a backend indexes for s: its words as
// SearchTerms finds them (any number), separated by spaces.
func SearchText(s string) string { return strings.Join(terms(s, -1), " ") }

func terms(s string, max int) []string {
	var out []string
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }) {
		if len(out) == max {
			break
		}
		w = strings.ToLower(w)
		if r := []rune(w); len(r) > maxTermRunes {
			w = string(r[:maxTermRunes])
		}
		out = append(out, w)
	}
	return out
}
