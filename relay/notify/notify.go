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
// there are). Ticket writes one outbox item per mail and per webhook
// delivery to the store (store.OutboxStore) before the RPC answers;
// workers on every relay claim due items with a lease, so each is sent by
// one relay, retry with backoff, and mark them sent or failed with the
// last error. Pending items survive a restart. Nothing is mailed while no
// SMTP server is configured.
package notify

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deskside/deskside/relay/store"
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
	// Outbox keeps mails and webhook deliveries until they are sent (nil:
	// nothing is queued or sent; for tests of the inbound path).
	Outbox store.OutboxStore
	Log    *slog.Logger
	Now    func() time.Time
	// Sender sends mail (default: SMTPSender with RootCAs).
	Sender  Sender
	RootCAs *x509.CertPool
	// Technicians lists technicians with their email addresses.
	Technicians func(ctx context.Context) ([]Technician, error)
	// Reply adds an answer by email to a ticket (tickets.RequesterReply).
	Reply func(ctx context.Context, code, from, text string) error
	// HTTP posts webhooks (default: 10 s timeout).
	HTTP *http.Client
	// Backoff is the wait before each retry of a mail or a webhook
	// delivery (default 5 s, 30 s, 2 min, 10 min, 30 min); after the last
	// one the item is given up (failed).
	Backoff []time.Duration
	// Poll is how often the workers look for due items that another relay
	// queued or that are due for a retry (default 2 s); items queued here
	// wake them at once.
	Poll time.Duration
	// Lease is how long a claimed item stays with this relay before
	// another may take it over (default 5 min: longer than an attempt).
	Lease time.Duration
	// Workers is how many items are attempted at once (default 3).
	Workers int
	// QueueSize bounds the ticket changes kept in memory while the store
	// refuses to queue their notifications (default 1024).
	QueueSize int
}

// Stats count what happened, for metrics and tests.
type Stats struct {
	MailSent, MailFailed, MailSkipped        atomic.Int64
	WebhookDelivered, WebhookFailed, Dropped atomic.Int64
	InboundAccepted, InboundRefused          atomic.Int64
	// Unqueued counts ticket changes whose notifications the store
	// refused at first (kept in memory and written again).
	Unqueued atomic.Int64
}

// Notifier delivers notifications.
type Notifier struct {
	o     Options
	Stats Stats

	owner string // this Notifier's name on the leases it takes
	kick  chan struct{}
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup

	keptMu sync.Mutex
	kept   []Event // ticket changes the store refused to queue

	errMu     sync.Mutex
	lastErrAt time.Time // the last store error logged by a worker
}

// claimBatch is how many items a worker claims at once.
const claimBatch = 4

// OutboxKeep is how long sent and failed items stay in the outbox (and
// the webhook delivery log).
const OutboxKeep = 30 * 24 * time.Hour

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
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = 5 * time.Minute
	}
	if o.Workers <= 0 {
		o.Workers = 3
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	n := &Notifier{o: o, owner: "notify-" + hex.EncodeToString(rnd[:]), kick: make(chan struct{}, 1)}
	n.ctx, n.stop = context.WithCancel(context.Background())
	if o.Outbox != nil {
		for i := range o.Workers {
			n.wg.Add(1)
			go n.worker(i)
		}
	}
	return n
}

// Close stops the workers. Queued items stay in the store for the next
// start (or another relay); an attempt cut short is not counted.
func (n *Notifier) Close() {
	n.stop()
	n.wg.Wait()
	n.keptMu.Lock()
	defer n.keptMu.Unlock()
	if len(n.kept) > 0 {
		n.Stats.Dropped.Add(int64(len(n.kept)))
		n.o.Log.Error("notifications lost: the store refused them until the relay stopped", "changes", len(n.kept))
		n.kept = nil
	}
}

// Ticket queues the notifications of one ticket change (mails, webhook
// deliveries) in the store's outbox and wakes the workers. It does not
// fail the change: when the store refuses (a full disk, the database
// gone), the change is logged, kept in memory and written again by the
// workers until the store takes it (lost only if the relay stops first).
func (n *Notifier) Ticket(ctx context.Context, ev Event) {
	if ev.Time.IsZero() {
		ev.Time = n.o.Now()
	}
	if n.o.Outbox == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := n.queue(ctx, ev); err != nil {
		n.keep(ev, err)
		return
	}
	n.wake()
}

func (n *Notifier) wake() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// keep holds ev in memory after the store refused its notifications.
func (n *Notifier) keep(ev Event, err error) {
	n.Stats.Unqueued.Add(1)
	n.keptMu.Lock()
	defer n.keptMu.Unlock()
	if len(n.kept) >= n.o.QueueSize {
		n.Stats.Dropped.Add(1)
		n.o.Log.Error("notifications lost: the store refuses them and the memory queue is full; free disk space where the relay's database lives or bring its database back",
			"ticket", ev.Code, "action", ev.Action, "error", err)
		return
	}
	n.kept = append(n.kept, ev)
	n.o.Log.Error("notifications not queued: the store refused them; the ticket change itself is saved. They are kept in memory and written again every "+n.o.Poll.String()+
		" (lost if the relay stops first): free disk space where the relay's database lives or bring its database back",
		"ticket", ev.Code, "action", ev.Action, "kept", len(n.kept), "error", err)
}

// flushKept writes the kept changes' notifications, oldest first,
// stopping at the first refusal.
func (n *Notifier) flushKept() {
	for n.ctx.Err() == nil {
		n.keptMu.Lock()
		if len(n.kept) == 0 {
			n.keptMu.Unlock()
			return
		}
		ev := n.kept[0]
		n.keptMu.Unlock()
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := n.queue(ctx, ev)
		cancel()
		if err != nil {
			return
		}
		n.o.Log.Info("notifications queued: the store took them again", "ticket", ev.Code, "action", ev.Action)
		n.keptMu.Lock()
		n.kept = n.kept[1:] // only this worker removes
		n.keptMu.Unlock()
	}
}

// mailPayload and hookPayload are what an outbox item carries.
type mailPayload struct {
	Template string `json:"template"`
	Event    Event  `json:"event"`
}

type hookPayload struct {
	Delivery string          `json:"delivery"`
	Body     json.RawMessage `json:"body"`
}

// queue writes ev's mails and webhook deliveries to the outbox in one
// transaction.
func (n *Notifier) queue(ctx context.Context, ev Event) error {
	mails, err := n.mails(ctx, ev)
	if err != nil {
		return err
	}
	hooks, err := n.webhookItems(ctx, ev)
	if err != nil {
		return err
	}
	items := append(mails, hooks...)
	if len(items) == 0 {
		return nil
	}
	_, err = n.o.Outbox.AddOutbox(ctx, items)
	return err
}

// recipients are the mails one event calls for.
func (n *Notifier) recipients(ctx context.Context, ev Event) ([]mailPayload, []string, error) {
	type rcpt struct{ to, tmpl string }
	var out []rcpt
	techs := func(match func(Technician) bool, tmpl string) error {
		ts, err := n.technicians(ctx)
		if err != nil {
			return err
		}
		for _, t := range ts {
			if match(t) {
				out = append(out, rcpt{t.Email, tmpl})
			}
		}
		return nil
	}
	var err error
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
			err = techs(func(t Technician) bool { return t.Name == ev.Assignee }, TemplateAssigned)
		}
	case "ticket.escalate":
		err = techs(func(t Technician) bool { return t.Tier == ev.Tier && t.Name != ev.Actor }, TemplateEscalated)
	case "ticket.reply.email":
		// The assignee; an unassigned ticket's tier (its queue), as an
		// escalation does (docs/adr/0024-notifications.md).
		if ev.Assignee != "" {
			err = techs(func(t Technician) bool { return t.Name == ev.Assignee }, TemplateAnswered)
		} else {
			err = techs(func(t Technician) bool { return t.Tier == ev.Tier }, TemplateAnswered)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	var ps []mailPayload
	var to []string
	for _, r := range out {
		if r.to != "" {
			ps = append(ps, mailPayload{Template: r.tmpl, Event: ev})
			to = append(to, r.to)
		}
	}
	return ps, to, nil
}

// mails returns the outbox items of ev's mails; none while SMTP is not
// configured (counted as skipped).
func (n *Notifier) mails(ctx context.Context, ev Event) ([]store.OutboxItem, error) {
	ps, to, err := n.recipients(ctx, ev)
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	if _, err := n.SMTPSettings(ctx); errors.Is(err, ErrNotConfigured) {
		n.Stats.MailSkipped.Add(int64(len(ps)))
		n.o.Log.Debug("no mail sent: SMTP is not configured", "ticket", ev.Code, "action", ev.Action)
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	now := n.o.Now()
	var items []store.OutboxItem
	for i, p := range ps {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		items = append(items, store.OutboxItem{Kind: store.OutboxMail, Target: to[i], Ticket: ev.Code, Event: ev.Action,
			Payload: b, NextAt: now, CreatedAt: now, UpdatedAt: now})
	}
	return items, nil
}

func (n *Notifier) technicians(ctx context.Context) ([]Technician, error) {
	if n.o.Technicians == nil {
		return nil, nil
	}
	ts, err := n.o.Technicians(ctx)
	if err != nil {
		return nil, fmt.Errorf("notify: reading the technicians: %w", err)
	}
	var out []Technician
	for _, t := range ts {
		if !t.Disabled && t.Email != "" {
			out = append(out, t)
		}
	}
	return out, nil
}

// worker claims due items and attempts them until Close; worker 0 also
// writes kept changes and prunes old items.
func (n *Notifier) worker(i int) {
	defer n.wg.Done()
	var pruned time.Time
	for {
		if i == 0 {
			n.flushKept()
			if now := n.o.Now(); now.Sub(pruned) > time.Hour {
				pruned = now
				if k, err := n.o.Outbox.PruneOutbox(n.ctx, now.Add(-OutboxKeep)); err != nil && n.ctx.Err() == nil {
					n.storeErr("old outbox items not pruned", err)
				} else if k > 0 {
					n.o.Log.Info("old outbox items pruned", "items", k)
				}
			}
		}
		for n.ctx.Err() == nil {
			items, err := n.o.Outbox.ClaimOutbox(n.ctx, n.owner, n.o.Now(), n.o.Lease, claimBatch)
			if err != nil {
				if n.ctx.Err() == nil {
					n.storeErr("outbox not read; mail and webhooks wait", err)
				}
				break
			}
			for _, it := range items {
				n.attempt(it)
			}
			if len(items) < claimBatch {
				break
			}
		}
		t := time.NewTimer(n.o.Poll)
		select {
		case <-n.ctx.Done():
			t.Stop()
			return
		case <-n.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// storeErr logs a worker's store error at most once a minute.
func (n *Notifier) storeErr(msg string, err error) {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	if now := time.Now(); now.Sub(n.lastErrAt) > time.Minute {
		n.lastErrAt = now
		n.o.Log.Error(msg+": check the relay's disk space and its database; the workers try again every "+n.o.Poll.String(), "error", err)
	}
}

// errPermanent marks an attempt's error that no retry can mend.
type errPermanent struct{ error }

func (e errPermanent) Unwrap() error { return e.error }

// attempt makes one attempt at it and records the outcome.
func (n *Notifier) attempt(it store.OutboxItem) {
	var (
		status int
		err    error
	)
	switch it.Kind {
	case store.OutboxMail:
		err = n.sendMail(n.ctx, it)
	case store.OutboxWebhook:
		status, err = n.sendHook(n.ctx, it)
	default:
		err = errPermanent{fmt.Errorf("notify: unknown outbox kind %q", it.Kind)}
	}
	now := n.o.Now()
	it.UpdatedAt, it.LastStatus = now, status
	var permanent errPermanent
	switch {
	case err == nil:
		it.Attempts++
		it.Status, it.LastError = store.OutboxSent, ""
		if it.Kind == store.OutboxMail {
			n.Stats.MailSent.Add(1)
			n.o.Log.Info("mail sent", "ticket", it.Ticket, "event", it.Event, "attempt", it.Attempts)
		} else {
			n.Stats.WebhookDelivered.Add(1)
		}
	case n.ctx.Err() != nil:
		// Closing: hand the item back for the next start, uncounted.
		it.NextAt = now
	case errors.As(err, &permanent) || it.Attempts+1 > len(n.o.Backoff):
		it.Attempts++
		it.Status, it.LastError = store.OutboxFailed, err.Error()
		switch {
		case errors.Is(err, ErrNotConfigured):
			n.Stats.MailSkipped.Add(1)
		case it.Kind == store.OutboxMail:
			n.Stats.MailFailed.Add(1)
		default:
			n.Stats.WebhookFailed.Add(1)
		}
		n.o.Log.Warn(it.Kind+" given up", "ticket", it.Ticket, "event", it.Event, "target", logTarget(it), "attempts", it.Attempts, "error", it.LastError)
	default:
		it.Attempts++
		wait := n.o.Backoff[it.Attempts-1]
		it.NextAt, it.LastError = now.Add(wait), err.Error()
		n.o.Log.Info(it.Kind+" failed; retrying", "ticket", it.Ticket, "event", it.Event, "target", logTarget(it), "attempt", it.Attempts, "in", wait, "error", it.LastError)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(n.ctx), 10*time.Second)
	defer cancel()
	if err := n.o.Outbox.FinishOutbox(ctx, n.owner, it); err != nil {
		n.o.Log.Warn("outbox item not updated; it is tried again when its lease ends (a mail may then arrive twice)", "item", it.ID, "error", err)
	}
}

// logTarget names an item's target for the log: the webhook's id, or
// that it is a mail (addresses stay out of the log).
func logTarget(it store.OutboxItem) string {
	if it.Kind == store.OutboxWebhook {
		return it.Target
	}
	return "requester or technician"
}

// sendMail renders and sends one mail item.
func (n *Notifier) sendMail(ctx context.Context, it store.OutboxItem) error {
	var p mailPayload
	if err := json.Unmarshal(it.Payload, &p); err != nil {
		return errPermanent{fmt.Errorf("notify: unreadable outbox item: %v", err)}
	}
	c, err := n.SMTPSettings(ctx)
	if errors.Is(err, ErrNotConfigured) {
		return errPermanent{err}
	}
	if err != nil {
		return err
	}
	text, _, err := n.Template(ctx, p.Template)
	if errors.Is(err, ErrInvalid) {
		return errPermanent{err}
	}
	if err != nil {
		return err
	}
	subject, body, err := render(p.Template, text, p.Event)
	if err != nil {
		return errPermanent{fmt.Errorf("%v: fix the template (`deskside notify template set`)", err)}
	}
	return n.o.Sender.Send(ctx, c, Message{To: it.Target, Subject: subject, Body: body, Ticket: p.Event.Code})
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
