package server

import (
	"context"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// TicketNotifier is a bus that also announces ticket events to every
// relay (relay/bus/natsbus).
type TicketNotifier interface {
	NotifyTicket(kind, code string) error
	OnTicket(f func(kind, code string)) (stop func(), err error)
}

// ticketEvent is a ticket event with the device group that decides who
// may see it (see ticketGroup).
type ticketEvent struct {
	resp  *desksidev1.WatchTicketsResponse
	group *string
}

// ticketChanged tells watchers on every relay about a ticket event.
func (s *Server) ticketChanged(ctx context.Context, kind, code string) {
	if s.ticketNotifier != nil {
		err := s.ticketNotifier.NotifyTicket(kind, code)
		if err == nil {
			return // announced to every relay, this one included
		}
		s.log.Warn("ticket event not announced to the other relays", "ticket", code, logKeyError, err)
	}
	s.publishTicket(ctx, kind, code)
}

// publishTicket sends a ticket's current state to this relay's watchers.
func (s *Server) publishTicket(ctx context.Context, kind, code string) {
	if !s.ticketEvents.active() {
		return
	}
	ctx = context.WithoutCancel(ctx)
	t, err := s.store.GetTicket(ctx, code)
	if err != nil {
		s.log.Warn("ticket event not published", "ticket", code, logKeyError, err)
		return
	}
	sla, err := s.tickets.SLA(ctx)
	if err != nil {
		s.log.Warn("ticket event not published", "ticket", code, logKeyError, err)
		return
	}
	k := desksidev1.TicketEventKind_TICKET_EVENT_KIND_UPDATED
	if kind == ticketCreated {
		k = desksidev1.TicketEventKind_TICKET_EVENT_KIND_CREATED
	}
	g, err := s.ticketGroup(ctx, t)
	if err != nil {
		s.log.Warn("ticket event not published", "ticket", code, logKeyError, err)
		return
	}
	s.ticketEvents.publish(ticketEvent{resp: &desksidev1.WatchTicketsResponse{Kind: k, Ticket: ticketProto(t, sla, s.cfg.Now())}, group: g})
}
