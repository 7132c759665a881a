package server

// Notifications: the relay hands every ticket change made here to
// relay/notify (mail, webhooks) and runs its inbound mail listener.

import (
	"cmp"
	"context"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/notify"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/tickets"
)

func (s *Server) startNotify() error {
	s.notify = notify.New(notify.Options{
		Settings: s.store, Outbox: s.store, Log: s.log.With("component", "notify"), Now: s.cfg.Now,
		RootCAs: s.cfg.SMTPRootCAs, Backoff: s.cfg.WebhookBackoff, Poll: s.cfg.NotifyPoll,
		Technicians: s.notifyTechnicians, Reply: s.emailReply,
	})
	if s.cfg.MailListen == "" || s.cfg.MailListen == "off" {
		return nil
	}
	domain := s.cfg.MailDomain
	if domain == "" && len(s.cfg.Names) > 0 {
		domain = s.cfg.Names[0]
	}
	l, err := s.notify.Listen(s.cfg.MailListen, cmp.Or(domain, "localhost"), s.log)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	s.mailL = l
	return nil
}

// MailAddr is the inbound mail listener's address (nil when off).
func (s *Server) MailAddr() string {
	if s.mailL == nil {
		return ""
	}
	return s.mailL.Addr().String()
}

// notifyTicket hands a ticket change made on this relay to notify; text
// is a public reply's text or an escalation's reason.
func (s *Server) notifyTicket(ctx context.Context, action string, t store.Ticket, text string) {
	s.notify.Ticket(ctx, notify.Event{
		Action: action, Code: t.Code, Subject: t.Subject, RequesterName: t.RequesterName, RequesterEmail: t.RequesterEmail,
		Status: tickets.StatusName(t.Status), Tier: t.Tier, Assignee: t.Assignee, Actor: callerFrom(ctx).Name, Text: text,
		Time: s.cfg.Now(),
	})
}

// emailReply adds a requester's answer by email to their ticket.
func (s *Server) emailReply(ctx context.Context, code, from, text string) error {
	t, err := s.tickets.RequesterReply(ctx, code, from, text)
	if err != nil {
		return err
	}
	s.audit(ctx, "requester <"+from+">", "ticket.reply.email", t.Code, fmt.Sprintf("%d bytes", len(text)))
	s.ticketChanged(ctx, ticketUpdated, t.Code)
	// The assignee (or, unassigned, the ticket's tier) is mailed the
	// answer (docs/adr/0024-notifications.md).
	s.notify.Ticket(ctx, notify.Event{
		Action: "ticket.reply.email", Code: t.Code, Subject: t.Subject, RequesterName: t.RequesterName,
		Status: tickets.StatusName(t.Status), Tier: t.Tier, Assignee: t.Assignee, Actor: "requester", Text: text, Time: s.cfg.Now(),
	})
	return nil
}

// notifyTechnicians lists technicians with their email addresses.
func (s *Server) notifyTechnicians(ctx context.Context) ([]notify.Technician, error) {
	ts, err := s.store.ListTechnicians(ctx)
	if err != nil {
		return nil, err
	}
	var out []notify.Technician
	for _, t := range ts {
		a := tickets.Actor{Name: t.Name, Role: desksidev1.Role(t.Role)}
		out = append(out, notify.Technician{Name: t.Name, Email: t.Email, Tier: a.Tier(), Disabled: t.Disabled})
	}
	return out, nil
}

// Notifier is the relay's notifications (settings, templates, webhooks).
func (s *Server) Notifier() *notify.Notifier { return s.notify }

// registerNotifyMetrics exposes notify's counters.
func registerNotifyMetrics(reg prometheus.Registerer, n *notify.Notifier) {
	for _, c := range []struct {
		name, help string
		v          *atomic.Int64
	}{
		{"deskside_mail_sent_total", "Ticket mails sent.", &n.Stats.MailSent},
		{"deskside_mail_failed_total", "Ticket mails given up after their retries (see the log).", &n.Stats.MailFailed},
		{"deskside_mail_skipped_total", "Ticket mails not sent because no SMTP server is configured.", &n.Stats.MailSkipped},
		{"deskside_webhook_delivered_total", "Webhook deliveries accepted by their receiver.", &n.Stats.WebhookDelivered},
		{"deskside_webhook_failed_total", "Webhook deliveries given up after their retries.", &n.Stats.WebhookFailed},
		{"deskside_notify_dropped_total", "Ticket changes whose notifications were lost: the store refused them until the memory queue was full or the relay stopped.", &n.Stats.Dropped},
		{"deskside_notify_unqueued_total", "Ticket changes whose notifications the store refused at first (kept in memory, written again; see the log).", &n.Stats.Unqueued},
		{"deskside_inbound_mail_accepted_total", "Answers by email added to tickets.", &n.Stats.InboundAccepted},
		{"deskside_inbound_mail_refused_total", "Inbound mails refused (malformed, oversized, unknown sender or ticket).", &n.Stats.InboundRefused},
	} {
		v := c.v
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, func() float64 { return float64(v.Load()) }))
	}
}
