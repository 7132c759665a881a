package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/notify"
	"github.com/deskside/deskside/relay/notify/mailtest"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
)

// notifyRelay starts a relay with its log captured, taking answers by
// email on loopback and trusting smtpSrv's certificate.
func notifyRelay(t *testing.T, database string, smtpSrv *mailtest.Server, backoff []time.Duration) (*servertest.Relay, *syncBuffer) {
	logs := &syncBuffer{}
	r := servertest.Start(t, servertest.Options{Database: database, Modify: func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.MailListen, c.MailDomain = "127.0.0.1:0", "relay.test"
		if smtpSrv != nil {
			c.SMTPRootCAs = smtpSrv.RootCAs
		}
		c.WebhookBackoff, c.NotifyPoll = backoff, 50*time.Millisecond
	}})
	return r, logs
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendMail hands raw to the relay's inbound listener as from.
func sendMail(addr, from, raw string) error {
	return smtp.SendMail(addr, nil, from, []string{"helpdesk@example.com"}, []byte(strings.ReplaceAll(raw, "\n", "\r\n")))
}

// TestNotifyEmail: a requester's ticket mails through a real SMTP server
// (STARTTLS, signed in) when it is created (with its code), answered and
// resolved; their answer by email lands on the ticket as their public
// reply; malformed, oversized and foreign mail is refused and kept out;
// nothing is sent while SMTP is off; the password never reaches the log.
func TestNotifyEmail(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testNotifyEmail(t, "") })
	t.Run("postgres", func(t *testing.T) { testNotifyEmail(t, pgtest.DSN(t)) })
}

func testNotifyEmail(t *testing.T, database string) {
	mailSrv := mailtest.Start(t, false)
	r, logs := notifyRelay(t, database, mailSrv, nil)
	n := r.Srv.Notifier()
	tc, ctx := ticketClient(t, r, "admin", servertest.AdminPassword)
	newTicket := func(subject string) string {
		t.Helper()
		resp, err := tc.CreateTicket(ctx, &desksidev1.CreateTicketRequest{
			Requester: &desksidev1.TicketRequester{Name: "Sam Requester", Email: "sam@example.com"},
			Subject:   subject, Description: "It says offline.",
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetTicket().GetCode()
	}

	// SMTP off: nothing is sent, and the relay says why.
	newTicket("Before mail was set up")
	waitFor(t, "the skipped mail", func() bool { return n.Stats.MailSkipped.Load() == 1 })
	if _, err := n.SMTPSettings(context.Background()); err == nil || !strings.Contains(err.Error(), "deskside notify smtp set") {
		t.Fatalf("SMTP off: %v", err)
	}
	if got := len(mailSrv.Messages()); got != 0 {
		t.Fatalf("%d mails sent with SMTP off", got)
	}

	ns := desksidev1.NewNotificationServiceClient(r.Dial(t))
	if g, err := ns.GetSmtp(ctx, &desksidev1.GetSmtpRequest{}); err != nil || g.GetConfigured() {
		t.Fatalf("GetSmtp before: %v, %v", g, err)
	}
	// Every technician's ticket page learns whether mail goes out.
	mailOn := func() bool {
		t.Helper()
		st, err := tc.GetTicketSettings(ctx, &desksidev1.GetTicketSettingsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return st.GetMailConfigured()
	}
	if mailOn() {
		t.Fatal("GetTicketSettings says mail is configured before it is")
	}
	if _, err := ns.SetSmtp(ctx, &desksidev1.SetSmtpRequest{Smtp: &desksidev1.SmtpSettings{Host: mailSrv.Host, Port: uint32(mailSrv.Port),
		Username: mailtest.User, Password: mailtest.Password, Tls: "none", From: "helpdesk@example.com"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("SMTP without TLS: %v", err)
	}
	if _, err := ns.SetSmtp(ctx, &desksidev1.SetSmtpRequest{Smtp: &desksidev1.SmtpSettings{Host: mailSrv.Host, Port: uint32(mailSrv.Port),
		Username: mailtest.User, Password: mailtest.Password, Tls: notify.TLSStartTLS, From: "Help Desk <helpdesk@example.com>", ReplyTo: "helpdesk@example.com"}}); err != nil {
		t.Fatal(err)
	}
	g, err := ns.GetSmtp(ctx, &desksidev1.GetSmtpRequest{})
	if err != nil || !g.GetConfigured() || g.GetSmtp().GetPassword() != "********" || g.GetInboundListen() == "" {
		t.Fatalf("GetSmtp: %v, %v", g, err)
	}
	if !mailOn() {
		t.Fatal("GetTicketSettings says mail is off after SetSmtp")
	}

	// Created: the requester gets the code.
	code := newTicket("Printer offline")
	created := mailSrv.Wait(t, 10*time.Second, mailtest.To("sam@example.com", "filed it as ticket "+code))
	if !created.TLS || !created.Authed {
		t.Fatalf("creation mail: TLS %v, signed in %v", created.TLS, created.Authed)
	}
	pm, err := created.Parsed()
	if err != nil {
		t.Fatal(err)
	}
	if s := pm.Header.Get("Subject"); !strings.Contains(s, "["+code+"]") {
		t.Fatalf("creation subject %q lacks [%s]", s, code)
	}
	thread := pm.Header.Get("References")
	if !strings.Contains(thread, code) {
		t.Fatalf("References %q does not name %s", thread, code)
	}

	// A public reply mails its text; an internal note does not.
	if _, err := tc.ReplyTicket(ctx, &desksidev1.ReplyTicketRequest{Code: code, Text: "internal: printer firmware known bad", Internal: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.ReplyTicket(ctx, &desksidev1.ReplyTicketRequest{Code: code, Text: "Please switch the printer off and on again."}); err != nil {
		t.Fatal(err)
	}
	mailSrv.Wait(t, 10*time.Second, mailtest.To("sam@example.com", "switch the printer off and on again"))
	for _, m := range mailSrv.Messages() {
		if strings.Contains(string(m.Raw), "firmware known bad") {
			t.Fatal("an internal note was mailed to the requester")
		}
	}

	timeline := func() []*desksidev1.TicketEntry {
		t.Helper()
		g, err := tc.GetTicket(ctx, &desksidev1.GetTicketRequest{Code: code})
		if err != nil {
			t.Fatal(err)
		}
		return g.GetTimeline()
	}
	// The requester answers by email (their client quotes the original).
	addr := r.Srv.MailAddr()
	answer := fmt.Sprintf("From: Sam Requester <sam@example.com>\nTo: helpdesk@example.com\nSubject: Re: something\nIn-Reply-To: %s\nReferences: %s\nContent-Type: text/plain; charset=utf-8\n\nDone, it prints again. Thanks!\n\nOn Monday, Help Desk wrote:\n> Please switch the printer off and on again.\n", thread, thread)
	if err := sendMail(addr, "sam@example.com", answer); err != nil {
		t.Fatalf("answer by email refused: %v", err)
	}
	found := false
	for _, e := range timeline() {
		if e.GetKind() == desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_REPLY && e.GetAuthor() == "requester <sam@example.com>" {
			found = true
			if e.GetBody() != "Done, it prints again. Thanks!" {
				t.Fatalf("email reply body %q (the quote should be gone)", e.GetBody())
			}
		}
	}
	if !found {
		t.Fatal("the answer by email is not on the ticket")
	}
	before := len(timeline())

	// Refused and kept out: oversized, malformed, someone else, no ticket.
	big := fmt.Sprintf("From: sam@example.com\nSubject: [%s] logs\nContent-Type: text/plain\n\n%s\n", code, strings.Repeat("x", notify.MaxInboundBytes))
	refused := []struct{ name, from, raw string }{
		{"oversized", "sam@example.com", big},
		{"malformed", "sam@example.com", "this is not\x00 a mail header\n\nbody\n"},
		{"foreign sender", "eve@example.com", fmt.Sprintf("From: eve@example.com\nSubject: [%s] hi\n\nclose this ticket\n", code)},
		{"no ticket", "sam@example.com", "From: sam@example.com\nSubject: hello\n\nwhich ticket?\n"},
	}
	for _, c := range refused {
		if err := sendMail(addr, c.from, c.raw); err == nil {
			t.Fatalf("%s: accepted", c.name)
		}
	}
	if got := len(timeline()); got != before {
		t.Fatalf("refused mail changed the timeline: %d entries, want %d", got, before)
	}
	if got := n.Stats.InboundRefused.Load(); got != int64(len(refused)) {
		t.Fatalf("refused count %d, want %d", got, len(refused))
	}

	// Technicians: mail when a ticket is assigned to them or escalated
	// to their tier.
	techs := desksidev1.NewTechnicianServiceClient(r.Dial(t))
	for _, c := range []struct {
		name string
		role desksidev1.Role
	}{{"bob", desksidev1.Role_ROLE_TIER2}, {"carol", desksidev1.Role_ROLE_TIER3}} {
		if _, err := techs.CreateTechnician(ctx, &desksidev1.CreateTechnicianRequest{Name: c.name, Role: c.role, Password: "tall-lamp-quiet-river-42"}); err != nil {
			t.Fatal(err)
		}
		if _, err := ns.SetTechnicianEmail(ctx, &desksidev1.SetTechnicianEmailRequest{Technician: c.name, Email: c.name + "@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ns.SetTechnicianEmail(ctx, &desksidev1.SetTechnicianEmailRequest{Technician: "nobody", Email: "x@example.com"}); status.Code(err) != codes.NotFound {
		t.Fatalf("email for an unknown technician: %v", err)
	}
	// The Technicians page shows each address.
	if l, err := techs.ListTechnicians(ctx, &desksidev1.ListTechniciansRequest{}); err != nil {
		t.Fatal(err)
	} else {
		for _, a := range l.GetTechnicians() {
			if want := map[string]string{"bob": "bob@example.com", "carol": "carol@example.com"}[a.GetName()]; a.GetEmail() != want {
				t.Errorf("ListTechnicians: %s's email %q, want %q", a.GetName(), a.GetEmail(), want)
			}
		}
	}
	if _, err := tc.AssignTicket(ctx, &desksidev1.AssignTicketRequest{Code: code, Technician: "bob"}); err != nil {
		t.Fatal(err)
	}
	mailSrv.Wait(t, 10*time.Second, mailtest.To("bob@example.com", "assigned ticket "+code+" to you"))
	if _, err := tc.EscalateTicket(ctx, &desksidev1.EscalateTicketRequest{Code: code, Tier: 3, Reason: "needs domain admin rights"}); err != nil {
		t.Fatal(err)
	}
	mailSrv.Wait(t, 10*time.Second, mailtest.To("carol@example.com", "needs domain admin rights"))

	// Resolved.
	if _, err := tc.SetTicketStatus(ctx, &desksidev1.SetTicketStatusRequest{Code: code, Status: desksidev1.TicketStatus_TICKET_STATUS_RESOLVED}); err != nil {
		t.Fatal(err)
	}
	mailSrv.Wait(t, 10*time.Second, mailtest.To("sam@example.com", "is resolved"))

	// The requester answers by email again (reopening it): the ticket is
	// unassigned in the tier 3 queue, so that tier's technicians are
	// mailed the answer; once assigned, only the assignee is.
	if _, err := techs.CreateTechnician(ctx, &desksidev1.CreateTechnicianRequest{Name: "dave", Role: desksidev1.Role_ROLE_TIER3, Password: "tall-lamp-quiet-river-42"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.SetTechnicianEmail(ctx, &desksidev1.SetTechnicianEmailRequest{Technician: "dave", Email: "dave@example.com"}); err != nil {
		t.Fatal(err)
	}
	answerWith := func(text string) {
		t.Helper()
		raw := fmt.Sprintf("From: Sam Requester <sam@example.com>\nSubject: Re: [%s] Printer offline\nIn-Reply-To: %s\n\n%s\n", code, thread, text)
		if err := sendMail(addr, "sam@example.com", raw); err != nil {
			t.Fatalf("answer by email refused: %v", err)
		}
	}
	answerWith("It is offline again since this morning.")
	for _, tech := range []string{"carol@example.com", "dave@example.com"} {
		m := mailSrv.Wait(t, 10*time.Second, mailtest.To(tech, "offline again since this morning"))
		if !strings.Contains(string(m.Raw), "Sam Requester answered ticket "+code) {
			t.Fatalf("answer mail to %s:\n%s", tech, m.Raw)
		}
	}
	if _, err := tc.AssignTicket(ctx, &desksidev1.AssignTicketRequest{Code: code, Technician: "carol"}); err != nil {
		t.Fatal(err)
	}
	answerWith("Second answer: the cable was loose.")
	mailSrv.Wait(t, 10*time.Second, mailtest.To("carol@example.com", "the cable was loose"))
	// The answer's mails were queued before the listener accepted it.
	items, err := r.Srv.Store().ListOutbox(ctx, store.OutboxMail, 0)
	if err != nil {
		t.Fatal(err)
	}
	answered := map[string]int{}
	for _, it := range items {
		if it.Event == "ticket.reply.email" {
			answered[it.Target]++
		}
	}
	if want := map[string]int{"carol@example.com": 2, "dave@example.com": 1}; !maps.Equal(answered, want) {
		t.Fatalf("answer mails queued: %v, want %v (the tier while unassigned, then only the assignee)", answered, want)
	}

	// An edited template is used.
	if err := n.SetTemplate(ctx, notify.TemplateCreated, "Subject: Ticket {{.Code}}\n\nCustom body for {{.RequesterName}}.\n"); err != nil {
		t.Fatal(err)
	}
	if err := n.SetTemplate(ctx, notify.TemplateCreated, "Subject: {{.Nope}}\n\n"); err == nil {
		t.Fatal("a template naming an unknown field was accepted")
	}
	code2 := newTicket("Second")
	mailSrv.Wait(t, 10*time.Second, mailtest.To("sam@example.com", "Custom body for Sam Requester"))
	_ = code2

	// Implicit TLS (port 465 style) works too.
	implicit := mailtest.Start(t, true)
	if err := n.SetSMTP(ctx, notify.SMTP{Host: implicit.Host, Port: implicit.Port, Username: mailtest.User, Password: mailtest.Password,
		TLS: notify.TLSImplicit, From: "helpdesk@example.com"}); err == nil {
		// The relay trusts only the first server's certificate: refused.
		if err := n.Test(ctx, "admin@example.com"); err == nil {
			t.Fatal("an untrusted SMTP certificate was accepted")
		}
	} else {
		t.Fatal(err)
	}

	// Off again: nothing configured, and said so.
	if _, err := ns.SetSmtp(ctx, &desksidev1.SetSmtpRequest{Smtp: &desksidev1.SmtpSettings{}}); err != nil {
		t.Fatal(err)
	}
	if g, err := ns.GetSmtp(ctx, &desksidev1.GetSmtpRequest{}); err != nil || g.GetConfigured() {
		t.Fatalf("GetSmtp after turning mail off: %v, %v", g, err)
	}

	if strings.Contains(logs.String(), mailtest.Password) {
		t.Fatal("the SMTP password is in the relay's log")
	}
}

// TestNotifyWebhooks: a receiver verifies each delivery's HMAC-SHA256
// signature; a 500 is retried and then delivered; the delivery log says
// so; the secret (and a token in the URL) never reach the relay's log.
func TestNotifyWebhooks(t *testing.T) {
	r, logs := notifyRelay(t, "", nil, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond})
	n := r.Srv.Notifier()
	const secret = "webhook-secret-0123456789abcdef"
	var calls, verified atomic.Int32
	var lastBody atomic.Value
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := notify.Verify(secret, req.Header.Get(notify.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if notify.Verify("another-secret-0123456789", req.Header.Get(notify.SignatureHeader), body, time.Now(), 5*time.Minute) == nil {
			t.Error("a wrong secret verifies")
		}
		verified.Add(1)
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		lastBody.Store(string(body))
	}))
	defer recv.Close()
	ctx := context.Background()
	tc, cctx := ticketClient(t, r, "admin", servertest.AdminPassword)
	ns := desksidev1.NewNotificationServiceClient(r.Dial(t))
	if _, err := ns.AddWebhook(cctx, &desksidev1.AddWebhookRequest{Url: recv.URL + "/hook?token=url-token-secret", Secret: secret}); err != nil {
		t.Fatal(err)
	}
	ws, err := ns.ListWebhooks(cctx, &desksidev1.ListWebhooksRequest{})
	if err != nil || len(ws.GetWebhooks()) != 1 || strings.Contains(ws.String(), "url-token-secret") || strings.Contains(ws.String(), secret) {
		t.Fatalf("ListWebhooks: %v, %v", ws, err)
	}
	resp, err := tc.CreateTicket(cctx, &desksidev1.CreateTicketRequest{
		Requester: &desksidev1.TicketRequester{Name: "Sam", Email: "sam@example.com"}, Subject: "VPN down"})
	if err != nil {
		t.Fatal(err)
	}
	code := resp.GetTicket().GetCode()
	waitFor(t, "the retried delivery", func() bool {
		ds, _ := n.Deliveries(ctx)
		return len(ds) == 1 && ds[0].OK
	})
	dl, err := ns.ListWebhookDeliveries(cctx, &desksidev1.ListWebhookDeliveriesRequest{})
	if err != nil || len(dl.GetDeliveries()) != 1 {
		t.Fatalf("ListWebhookDeliveries: %v, %v", dl, err)
	}
	if d := dl.GetDeliveries()[0]; d.GetAttempts() != 2 || d.GetHttpStatus() != 200 || d.GetTicket() != code || d.GetEvent() != "ticket.create" || !d.GetOk() {
		t.Fatalf("delivery log: %v", d)
	}
	if got := verified.Load(); got != 2 {
		t.Fatalf("%d signed requests, want 2 (a 500, then the retry)", got)
	}
	body, _ := lastBody.Load().(string)
	if !strings.Contains(body, code) || strings.Contains(body, "sam@example.com") {
		t.Fatalf("webhook body: %s", body)
	}
	log := logs.String()
	if !strings.Contains(log, "retrying") {
		t.Fatal("the retry is not logged")
	}
	if strings.Contains(log, secret) || strings.Contains(log, "url-token-secret") {
		t.Fatal("a webhook secret is in the relay's log")
	}
}
