// Package notify tells people and other systems about tickets: email to
// the requester (created, answered, resolved) and to technicians
// (assigned, escalated to their tier) through the SMTP server an admin
// configured, outgoing webhooks (JSON, HMAC-SHA256 signed, retried with
// backoff, a delivery log), editable text/template templates with
// built-in defaults, and answers by email landing on the ticket (an SMTP
// listener on the relay, see docs/adr/0024-notifications.md).
//
// The relay's ticket adapter hands each change to Notifier.Ticket on the
// relay where it happened (so a change is mailed once however many relays
// there are); delivery runs on a bounded queue and never slows the RPC.
// Nothing is mailed while no SMTP server is configured.
package notify

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Settings is where notify keeps its settings (store.Store).
type Settings interface {
	PutRelaySetting(ctx context.Context, name string, data []byte) error
	GetRelaySetting(ctx context.Context, name string) ([]byte, error)
}

// Event is one ticket change, with what templates may show.
type Event struct {
	// Action is the audit action: ticket.create, ticket.reply,
	// ticket.status, ticket.assign, ticket.escalate, ...
	Action         string    `json:"action"`
	Code           string    `json:"code"`
	Subject        string    `json:"subject"`
	RequesterName  string    `json:"requester_name"`
	RequesterEmail string    `json:"requester_email"`
	Status         string    `json:"status"`
	Tier           int       `json:"tier"`
	Assignee       string    `json:"assignee,omitempty"`
	Actor          string    `json:"actor"`
	Text           string    `json:"text,omitempty"` // a public reply, an escalation reason
	Time           time.Time `json:"time"`
}

// Technician is someone notify may mail.
type Technician struct {
	Name, Email string
	Tier        int // 1–3 (an admin counts as 3)
	Disabled    bool
}

// Options configure a Notifier.
type Options struct {
	Settings Settings
	Log      *slog.Logger
	Now      func() time.Time
	// Sender sends mail (default: SMTPSender with RootCAs).
	Sender  Sender
	RootCAs *x509.CertPool
	// Technicians lists technicians with their email addresses.
	Technicians func(ctx context.Context) ([]Technician, error)
	// Reply adds an answer by email to a ticket (tickets.RequesterReply).
	Reply func(ctx context.Context, code, from, text string) error
	// HTTP posts webhooks (default: 10 s timeout).
	HTTP *http.Client
	// Backoff is the wait before each webhook retry (default 5 s, 30 s,
	// 2 min, 10 min, 30 min).
	Backoff []time.Duration
	// QueueSize bounds pending mails and webhook deliveries (default 1024).
	QueueSize int
}

// Stats count what happened, for metrics and tests.
type Stats struct {
	MailSent, MailFailed, MailSkipped        atomic.Int64
	WebhookDelivered, WebhookFailed, Dropped atomic.Int64
	InboundAccepted, InboundRefused          atomic.Int64
}

// Notifier delivers notifications.
type Notifier struct {
	o     Options
	Stats Stats

	mail   chan Event
	events chan Event // for webhooks
	hooks  chan *delivery
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	logMu  sync.Mutex // the delivery log's read-modify-write
}

// New starts a Notifier's workers; Close stops them.
func New(o Options) *Notifier {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sender == nil {
		o.Sender = &SMTPSender{RootCAs: o.RootCAs, Now: o.Now}
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Backoff == nil {
		o.Backoff = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute}
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	n := &Notifier{o: o, mail: make(chan Event, o.QueueSize), events: make(chan Event, o.QueueSize), hooks: make(chan *delivery, o.QueueSize)}
	n.ctx, n.stop = context.WithCancel(context.Background())
	n.wg.Add(4)
	go n.mailWorker()
	go n.eventWorker()
	go n.hookWorker()
	go n.hookWorker()
	return n
}

// Close stops the workers; what is queued is dropped.
func (n *Notifier) Close() {
	n.stop()
	n.wg.Wait()
}

// Ticket queues the notifications of one ticket change; it never blocks
// (a full queue drops the event, logged and counted).
func (n *Notifier) Ticket(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = n.o.Now()
	}
	for _, q := range []chan Event{n.mail, n.events} {
		select {
		case q <- ev:
		default:
			n.Stats.Dropped.Add(1)
			n.o.Log.Warn("notification dropped: the queue is full", "ticket", ev.Code, "action", ev.Action)
		}
	}
}

// eventWorker turns events into webhook deliveries.
func (n *Notifier) eventWorker() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case ev := <-n.events:
			n.queueWebhooks(ev)
		}
	}
}

func (n *Notifier) mailWorker() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case ev := <-n.mail:
			n.mailFor(n.ctx, ev)
		}
	}
}

// mailFor sends the emails one event calls for.
func (n *Notifier) mailFor(ctx context.Context, ev Event) {
	type rcpt struct{ to, tmpl string }
	var out []rcpt
	switch ev.Action {
	case "ticket.create":
		out = append(out, rcpt{ev.RequesterEmail, TemplateCreated})
	case "ticket.reply":
		out = append(out, rcpt{ev.RequesterEmail, TemplateReply})
	case "ticket.status":
		if ev.Status == "resolved" {
			out = append(out, rcpt{ev.RequesterEmail, TemplateResolved})
		}
	case "ticket.assign":
		if ev.Assignee != "" && ev.Assignee != ev.Actor {
			for _, t := range n.technicians(ctx) {
				if t.Name == ev.Assignee {
					out = append(out, rcpt{t.Email, TemplateAssigned})
				}
			}
		}
	case "ticket.escalate":
		for _, t := range n.technicians(ctx) {
			if t.Tier == ev.Tier && t.Name != ev.Actor {
				out = append(out, rcpt{t.Email, TemplateEscalated})
			}
		}
	}
	if len(out) == 0 {
		return
	}
	c, err := n.SMTPSettings(ctx)
	if errors.Is(err, ErrNotConfigured) {
		n.Stats.MailSkipped.Add(int64(len(out)))
		n.o.Log.Debug("no mail sent: SMTP is not configured", "ticket", ev.Code, "action", ev.Action)
		return
	}
	if err != nil {
		n.Stats.MailFailed.Add(int64(len(out)))
		n.o.Log.Warn("no mail sent", "ticket", ev.Code, "error", err)
		return
	}
	for _, r := range out {
		if r.to == "" {
			continue
		}
		text, _, err := n.Template(ctx, r.tmpl)
		if err != nil {
			n.Stats.MailFailed.Add(1)
			n.o.Log.Warn("mail not sent", "ticket", ev.Code, "template", r.tmpl, "error", err)
			continue
		}
		subject, body, err := render(r.tmpl, text, ev)
		if err != nil {
			n.Stats.MailFailed.Add(1)
			n.o.Log.Warn("mail not sent: fix the template (`deskside notify template set`)", "ticket", ev.Code, "template", r.tmpl, "error", err)
			continue
		}
		if err := n.o.Sender.Send(ctx, c, Message{To: r.to, Subject: subject, Body: body, Ticket: ev.Code}); err != nil {
			n.Stats.MailFailed.Add(1)
			n.o.Log.Warn("mail not sent", "ticket", ev.Code, "template", r.tmpl, "error", err)
			continue
		}
		n.Stats.MailSent.Add(1)
		n.o.Log.Info("mail sent", "ticket", ev.Code, "template", r.tmpl)
	}
}

func (n *Notifier) technicians(ctx context.Context) []Technician {
	if n.o.Technicians == nil {
		return nil
	}
	ts, err := n.o.Technicians(ctx)
	if err != nil {
		n.o.Log.Warn("technicians not read for mail", "error", err)
		return nil
	}
	var out []Technician
	for _, t := range ts {
		if !t.Disabled && t.Email != "" {
			out = append(out, t)
		}
	}
	return out
}

// Test sends a test message to addr through the configured server,
// synchronously, and returns what went wrong.
func (n *Notifier) Test(ctx context.Context, addr string) error {
	c, err := n.SMTPSettings(ctx)
	if err != nil {
		return err
	}
	return n.o.Sender.Send(ctx, c, Message{To: addr, Subject: "Deskside test message",
		Body: "This is a test message from your Deskside relay: mail works.\n"})
}
