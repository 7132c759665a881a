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
	webhooksSetting   = "notify.webhooks"
	deliveriesSetting = "notify.deliveries"
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
// after its last attempt so far.
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

type delivery struct {
	hook Webhook
	body []byte
	log  Delivery
}

// Deliveries returns the delivery log, newest first.
func (n *Notifier) Deliveries(ctx context.Context) ([]Delivery, error) {
	b, err := n.o.Settings.GetRelaySetting(ctx, deliveriesSetting)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(b) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ds []Delivery
	err = json.Unmarshal(b, &ds)
	return ds, err
}

// record puts d's state in the delivery log (replacing its earlier one).
func (n *Notifier) record(ctx context.Context, d Delivery) {
	n.logMu.Lock()
	defer n.logMu.Unlock()
	ds, err := n.Deliveries(ctx)
	if err != nil {
		ds = nil
	}
	out := []Delivery{d}
	for _, x := range ds {
		if x.ID != d.ID && len(out) < DeliveryLogSize {
			out = append(out, x)
		}
	}
	b, _ := json.Marshal(out)
	if err := n.o.Settings.PutRelaySetting(ctx, deliveriesSetting, b); err != nil {
		n.o.Log.Warn("webhook delivery log not written", "error", err)
	}
}

// webhookBody is what a receiver gets.
type webhookBody struct {
	ID     string `json:"id"`
	Event  string `json:"event"`
	Ticket Event  `json:"ticket"`
}

func (n *Notifier) queueWebhooks(ev Event) {
	ws, err := n.Webhooks(n.ctx)
	if err != nil {
		n.o.Log.Warn("webhooks not read", "error", err)
		return
	}
	for _, w := range ws {
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		id := hex.EncodeToString(rnd[:])
		ev := ev
		ev.RequesterEmail = "" // personal data stays on the relay
		body, _ := json.Marshal(webhookBody{ID: id, Event: ev.Action, Ticket: ev})
		d := &delivery{hook: w, body: body, log: Delivery{ID: id, Webhook: w.ID, Event: ev.Action, Ticket: ev.Code, Time: n.o.Now()}}
		n.enqueue(d)
	}
}

func (n *Notifier) enqueue(d *delivery) {
	select {
	case n.hooks <- d:
	default:
		n.Stats.Dropped.Add(1)
		d.log.Done, d.log.Error = true, "dropped: the delivery queue is full"
		n.record(n.ctx, d.log)
		n.o.Log.Warn("webhook delivery dropped: the queue is full", "webhook", d.hook.ID)
	}
}

func (n *Notifier) hookWorker() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case d := <-n.hooks:
			n.deliver(d)
		}
	}
}

// deliver makes one attempt and schedules the next on failure.
func (n *Notifier) deliver(d *delivery) {
	d.log.Attempts++
	d.log.Time = n.o.Now()
	status, err := n.post(d)
	d.log.Status = status
	if err == nil {
		d.log.OK, d.log.Done, d.log.Error = true, true, ""
		n.Stats.WebhookDelivered.Add(1)
		n.record(n.ctx, d.log)
		return
	}
	d.log.Error = err.Error()
	if d.log.Attempts > len(n.o.Backoff) {
		d.log.Done = true
		n.Stats.WebhookFailed.Add(1)
		n.record(n.ctx, d.log)
		n.o.Log.Warn("webhook delivery given up", "webhook", d.hook.ID, "url", redactURL(d.hook.URL), "attempts", d.log.Attempts, "error", d.log.Error)
		return
	}
	n.record(n.ctx, d.log)
	wait := n.o.Backoff[d.log.Attempts-1]
	n.o.Log.Info("webhook delivery failed; retrying", "webhook", d.hook.ID, "url", redactURL(d.hook.URL), "attempt", d.log.Attempts, "in", wait, "error", d.log.Error)
	t := time.AfterFunc(wait, func() {
		if n.ctx.Err() == nil {
			n.enqueue(d)
		}
	})
	context.AfterFunc(n.ctx, func() { t.Stop() })
}

func (n *Notifier) post(d *delivery) (int, error) {
	ts := strconv.FormatInt(n.o.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, d.hook.URL, bytes.NewReader(d.body))
	if err != nil {
		return 0, errors.New("malformed URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "deskside-relay")
	req.Header.Set(EventHeader, d.log.Event)
	req.Header.Set(DeliveryHeader, d.log.ID)
	req.Header.Set(SignatureHeader, "t="+ts+",v1="+sign(d.hook.Secret, ts, d.body))
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
