package store

import (
	"context"
	"time"
)

// ReportStore feeds the help-desk reports (package relay/reports): compact
// rows of the tickets a period touches, with the timeline events the
// report's definitions need. The arithmetic happens above the store, once,
// so both backends give the same answers by construction.
type ReportStore interface {
	// ReportTickets returns every ticket created before to and updated at
	// or after from (so every ticket with an event in [from, to)), by id,
	// each with its status, tier and assignee entries (all of them, also
	// those after to: a reopen within 14 days may fall there), oldest first,
	// its device's model and OS (the inventory's display name, else the agent's OS; empty when unknown) and the knowledge-base
	// articles linked to it, by id.
	ReportTickets(ctx context.Context, from, to time.Time) ([]ReportTicket, error)
}

// ReportTicket is one ticket as the reports see it.
type ReportTicket struct {
	ID              int64
	Code            string
	Category        string
	Priority        int
	Tier            int
	Assignee        string
	CreatedAt       time.Time
	FirstResponseAt time.Time
	DeviceModel     string
	DeviceOS        string
	Events          []ReportEvent
	Articles        []ReportArticle
}

// ReportEvent is a status, tier or assignee entry of a ticket's timeline
// (Kind is a desksidev1.TicketEntryKind value).
type ReportEvent struct {
	Time     time.Time
	Author   string
	Kind     int
	From, To string
}

// ReportArticle is a knowledge-base article linked to a ticket.
type ReportArticle struct {
	ID    int64
	Title string
}

// Kinds of timeline entries ReportTickets returns (desksidev1 values).
const (
	ReportKindStatus   = 4
	ReportKindTier     = 5
	ReportKindAssignee = 6
)
