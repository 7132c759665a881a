package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// Webhook headers. The signature is "t=<unix seconds>,v1=<hex>" where
// v1 = HMAC-SHA256(secret, "<unix seconds>." + body); a receiver
// recomputes it and refuses old timestamps (Verify).
const (
	SignatureHeader = "Deskside-Signature"
	EventHeader     = "Deskside-Event"
	DeliveryHeader  = "Deskside-Delivery"
)

const (
	webhooksSetting = "notify.webhooks"
	// MaxWebhooks and DeliveryLogSize bound what is kept.
	MaxWebhooks     = 20
	DeliveryLogSize = 200
)

// Webhook is one receiver of ticket events.
type Webhook struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Secret string `json:"secret"`
}

// Masked is w with its secret hidden and the URL's query (which may
// carry a token) left out.
func (w Webhook) Masked() Webhook {
	w.Secret = "********"
	w.URL = redactURL(w.URL)
	return w
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(malformed)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// Webhooks lists the configured webhooks (with secrets: callers mask).
func (n *Notifier) Webhooks(ctx context.Context) ([]Webhook, error) {
	b, err := n.o.Settings.GetRelaySetting(ctx, webhooksSetting)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(b) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ws []Webhook
	if err := json.Unmarshal(b, &ws); err != nil {
		return nil, fmt.Errorf("notify: the stored webhooks are unreadable (%v)", err)
	}
	return ws, nil
}

// AddWebhook adds a receiver; an empty secret gets a random one, which is
// returned (the only time it is shown).
func (n *Notifier) AddWebhook(ctx context.Context, rawURL, secret string) (Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Webhook{}, fmt.Errorf("%w: webhook URL %q: an http(s) URL such as https://chat.example.com/hooks/deskside", ErrInvalid, redactURL(rawURL))
	}
	if len(secret) > 0 && len(secret) < 16 {
		return Webhook{}, fmt.Errorf("%w: the secret is shorter than 16 characters; leave --secret out to get a random one", ErrInvalid)
	}
	var rnd [24]byte
	if secret == "" {
		_, _ = rand.Read(rnd[:])
		secret = hex.EncodeToString(rnd[:])
	}
	ws, err := n.Webhooks(ctx)
	if err != nil {
		return Webhook{}, err
	}
	if len(ws) >= MaxWebhooks {
		return Webhook{}, fmt.Errorf("%w: already %d webhooks; remove one first (`deskside notify webhook remove`)", ErrInvalid, len(ws))
	}
	_, _ = rand.Read(rnd[:4])
	w := Webhook{ID: "wh-" + hex.EncodeToString(rnd[:4]), URL: u.String(), Secret: secret}
	ws = append(ws, w)
	b, _ := json.Marshal(ws)
	return w, n.o.Settings.PutRelaySetting(ctx, webhooksSetting, b)
}

// RemoveWebhook removes a receiver by id.
func (n *Notifier) RemoveWebhook(ctx context.Context, id string) error {
	ws, err := n.Webhooks(ctx)
	if err != nil {
		return err
	}
	out := ws[:0]
	for _, w := range ws {
		if w.ID != id {
			out = append(out, w)
		}
	}
	if len(out) == len(ws) {
		return fmt.Errorf("%w: no webhook %q (`deskside notify webhook list`)", ErrInvalid, id)
	}
	b, _ := json.Marshal(out)
	return n.o.Settings.PutRelaySetting(ctx, webhooksSetting, b)
}

// Delivery is one entry of the delivery log: one event to one webhook,
// after its last attempt so far (an outbox item).
type Delivery struct {
	ID       string    `json:"id"`
	Webhook  string    `json:"webhook"`
	Event    string    `json:"event"`
	Ticket   string    `json:"ticket"`
	Attempts int       `json:"attempts"`
	Status   int       `json:"status"` // last HTTP status, 0 for none
	Error    string    `json:"error,omitempty"`
	Done     bool      `json:"done"` // delivered, or given up
	OK       bool      `json:"ok"`
	Time     time.Time `json:"time"`
}

// Deliveries returns the delivery log (the last DeliveryLogSize webhook
// deliveries in the outbox), newest first.
func (n *Notifier) Deliveries(ctx context.Context) ([]Delivery, error) {
	if n.o.Outbox == nil {
		return nil, nil
	}
	items, err := n.o.Outbox.ListOutbox(ctx, store.OutboxWebhook, DeliveryLogSize)
	if err != nil {
		return nil, err
	}
	out := make([]Delivery, 0, len(items))
	for _, it := range items {
		var p hookPayload
		_ = json.Unmarshal(it.Payload, &p)
		out = append(out, Delivery{ID: p.Delivery, Webhook: it.Target, Event: it.Event, Ticket: it.Ticket, Attempts: it.Attempts,
			Status: it.LastStatus, Error: it.LastError, Done: it.Status != store.OutboxPending, OK: it.Status == store.OutboxSent, Time: it.UpdatedAt})
	}
	return out, nil
}

// webhookBody is what a receiver gets.
type webhookBody struct {
	ID     string `json:"id"`
	Event  string `json:"event"`
	Ticket Event  `json:"ticket"`
}

// webhookItems returns the outbox items of ev's webhook deliveries, one
// per webhook. The URL and secret are read when each attempt is made.
func (n *Notifier) webhookItems(ctx context.Context, ev Event) ([]store.OutboxItem, error) {
	ws, err := n.Webhooks(ctx)
	if err != nil {
		return nil, err
	}
	now := n.o.Now()
	var items []store.OutboxItem
	for _, w := range ws {
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		id := hex.EncodeToString(rnd[:])
		ev := ev
		ev.RequesterEmail = "" // personal data stays on the relay
		body, err := json.Marshal(webhookBody{ID: id, Event: ev.Action, Ticket: ev})
		if err != nil {
			return nil, err
		}
		p, err := json.Marshal(hookPayload{Delivery: id, Body: body})
		if err != nil {
			return nil, err
		}
		items = append(items, store.OutboxItem{Kind: store.OutboxWebhook, Target: w.ID, Ticket: ev.Code, Event: ev.Action,
			Payload: p, NextAt: now, CreatedAt: now, UpdatedAt: now})
	}
	return items, nil
}

// sendHook makes one delivery attempt of a webhook item.
func (n *Notifier) sendHook(ctx context.Context, it store.OutboxItem) (int, error) {
	var p hookPayload
	if err := json.Unmarshal(it.Payload, &p); err != nil {
		return 0, errPermanent{fmt.Errorf("notify: unreadable outbox item: %v", err)}
	}
	ws, err := n.Webhooks(ctx)
	if err != nil {
		return 0, err
	}
	for _, w := range ws {
		if w.ID == it.Target {
			return n.post(ctx, w, p.Delivery, it.Event, p.Body)
		}
	}
	return 0, errPermanent{fmt.Errorf("notify: webhook %s was removed", it.Target)}
}

func (n *Notifier) post(ctx context.Context, hook Webhook, delivery, event string, body []byte) (int, error) {
	ts := strconv.FormatInt(n.o.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, errPermanent{errors.New("malformed URL")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "deskside-relay")
	req.Header.Set(EventHeader, event)
	req.Header.Set(DeliveryHeader, delivery)
	req.Header.Set(SignatureHeader, "t="+ts+",v1="+sign(hook.Secret, ts, body))
	resp, err := n.o.HTTP.Do(req)
	if err != nil {
		// The error names the URL; keep its query (a token) out.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

func sign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a webhook's signature header against its body, refusing
// timestamps more than tolerance from now (replays).
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, v1 string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || v1 == "" {
		return errors.New("notify: malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("notify: signature timestamp out of tolerance")
	}
	want, _ := hex.DecodeString(sign(secret, ts, body))
	got, err := hex.DecodeString(v1)
	if err != nil || !hmac.Equal(want, got) {
		return errors.New("notify: signature mismatch")
	}
	return nil
}
