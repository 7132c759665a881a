package server

import (
	"context"
	"sync"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// ticketHub fans ticket events out to WatchTickets streams on this relay;
// with several relays, a bus that implements TicketNotifier (NATS)
// carries the events between them first (as hub does for devices).
type ticketHub struct {
	mu     sync.Mutex
	subs   map[*ticketSub]struct{}
	closed bool
}

// ticketSub is one watcher; one that falls behind by more than its
// buffer is dropped (lagged) rather than slowing the relay.
type ticketSub struct {
	ch     chan *desksidev1.WatchTicketsResponse
	lagged bool
}

func newTicketHub() *ticketHub { return &ticketHub{subs: make(map[*ticketSub]struct{})} }

func (h *ticketHub) subscribe() *ticketSub {
	sub := &ticketSub{ch: make(chan *desksidev1.WatchTicketsResponse, 256)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(sub.ch)
		return sub
	}
	h.subs[sub] = struct{}{}
	return sub
}

func (h *ticketHub) unsubscribe(sub *ticketSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[sub]; ok {
		delete(h.subs, sub)
		close(sub.ch)
	}
}

func (h *ticketHub) active() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) > 0
}

func (h *ticketHub) publish(ev *desksidev1.WatchTicketsResponse) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		select {
		case sub.ch <- ev:
		default:
			sub.lagged = true
			delete(h.subs, sub)
			close(sub.ch)
		}
	}
}

func (h *ticketHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		delete(h.subs, sub)
		close(sub.ch)
	}
}

// TicketNotifier is a bus that also announces ticket events to every
// relay (relay/bus/natsbus).
type TicketNotifier interface {
	NotifyTicket(kind, code string) error
	OnTicket(f func(kind, code string)) (stop func(), err error)
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
	s.ticketEvents.publish(&desksidev1.WatchTicketsResponse{Kind: k, Ticket: ticketProto(t, sla, s.cfg.Now())})
}
