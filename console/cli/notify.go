package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const notifySMTPSetHelp = `
Sets the SMTP server ticket mail goes through (admin): requesters get mail
when their ticket is created (with its code), answered and resolved;
technicians when a ticket is assigned or escalated to them. Mail always
uses TLS: --tls starttls (port 587) or --tls tls (implicit, port 465). The
password is read from standard input and never shown again. --off turns
mail off (nothing is sent).

Examples:
  deskside notify smtp set --host smtp.example.com --port 587 --tls starttls \
      --from "Help Desk <helpdesk@example.com>" --user relay@example.com --password-stdin < pwfile
  deskside notify smtp set --off`

const notifyWebhookHelp = `
Webhooks post every ticket event as JSON to a URL, signed with
HMAC-SHA256 in the Deskside-Signature header ("t=UNIX,v1=HEX" over
"UNIX." + body); failed deliveries are retried with backoff and logged
(deskside notify webhook deliveries). Without --secret-stdin the relay
makes a secret and prints it once.

Examples:
  deskside notify webhook add https://chat.example.com/hooks/deskside
  deskside notify webhook list
  deskside notify webhook remove wh-1a2b3c4d
  deskside notify webhook deliveries`

const notifyTemplateHelp = `
Shows or replaces a mail template (admin): Go text/template, first line
"Subject: ...", a blank line, then the body. Fields: .Code .Subject
.RequesterName .RequesterEmail .Status .Tier .Assignee .Actor .Text .Time.
The names are created, reply, resolved, assigned and escalated; set
--default restores the built-in text.

Examples:
  deskside notify template show created
  deskside notify template set created --file created.tmpl
  deskside notify template set created --default`

// notifyUnary is unary for the NotificationService.
func notifyUnary[Resp any](e *runEnv, call func(context.Context, desksidev1.NotificationServiceClient) (Resp, error)) (Resp, error) {
	return unaryOn(e, desksidev1.NewNotificationServiceClient, call)
}

// stdinLine reads a secret from the first line of standard input.
func (e *runEnv) stdinLine(flagName string) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(e.stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%s: read standard input: %w", flagName, err)
	}
	s := strings.TrimRight(line, "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s: standard input is empty; pipe the secret in", flagName)
	}
	return s, nil
}

func (e *runEnv) notifySMTPShow(args []string) error {
	fs := e.flags("notify smtp show", notifySMTPSetHelp)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := kbArgs(fs, args); err != nil {
		return err
	}
	resp, err := notifyUnary(e, func(ctx context.Context, nc desksidev1.NotificationServiceClient) (*desksidev1.GetSmtpResponse, error) {
		return nc.GetSmtp(ctx, &desksidev1.GetSmtpRequest{})
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, resp)
	}
	inbound := dash(clean(resp.GetInboundListen()))
	if !resp.GetConfigured() {
		_, err := fmt.Fprintf(e.stdout, "SMTP is not configured: no mail is sent. Set it with `deskside notify smtp set`.\nAnswers by email: %s\n", inbound)
		return err
	}
	c := resp.GetSmtp()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Server:\t%s:%d (%s)\n", clean(c.GetHost()), c.GetPort(), clean(c.GetTls()))
	fmt.Fprintf(tw, "From:\t%s\n", clean(c.GetFrom()))
	fmt.Fprintf(tw, "Reply-To:\t%s\n", dash(clean(c.GetReplyTo())))
	fmt.Fprintf(tw, "User:\t%s\n", dash(clean(c.GetUsername())))
	fmt.Fprintf(tw, "Password:\t%s\n", dash(clean(c.GetPassword())))
	fmt.Fprintf(tw, "Answers by email:\t%s\n", inbound)
	return tw.Flush()
}

func (e *runEnv) notifySMTPSet(args []string) error {
	fs := e.flags("notify smtp set", notifySMTPSetHelp)
	host := fs.String("host", "", "the SMTP server")
	port := fs.Uint("port", 587, "its port")
	tlsMode := fs.String("tls", "starttls", "starttls or tls (implicit)")
	from := fs.String("from", "", "the sender address")
	replyTo := fs.String("reply-to", "", "where answers go (the relay's inbound address)")
	user := fs.String("user", "", "the SMTP user")
	pwStdin := fs.Bool("password-stdin", false, "read the SMTP password from the first line of standard input")
	off := fs.Bool("off", false, "turn mail off")
	if _, err := kbArgs(fs, args); err != nil {
		return err
	}
	req := &desksidev1.SetSmtpRequest{Smtp: &desksidev1.SmtpSettings{}}
	if !*off {
		if *host == "" {
			return errUsage(fs, "--host is required (or --off)")
		}
		var pw string
		if *pwStdin {
			var err error
			if pw, err = e.stdinLine("--password-stdin"); err != nil {
				return err
			}
		}
		req.Smtp = &desksidev1.SmtpSettings{Host: *host, Port: uint32(*port), Tls: *tlsMode, From: *from, ReplyTo: *replyTo, Username: *user, Password: pw}
	}
	if _, err := notifyUnary(e, func(ctx context.Context, nc desksidev1.NotificationServiceClient) (*desksidev1.SetSmtpResponse, error) {
		return nc.SetSmtp(ctx, req)
	}); err != nil {
		return err
	}
	msg := "SMTP set. Check it with `deskside notify smtp test ADDRESS`."
	if *off {
		msg = "Mail is off: nothing is sent."
	}
	_, err := fmt.Fprintln(e.stdout, msg)
	return err
}

func (e *runEnv) notifySMTPTest(args []string) error {
	fs := e.flags("notify smtp test", notifySMTPSetHelp)
	pos, err := kbArgs(fs, args, "ADDRESS")
	if err != nil {
		return err
	}
	if _, err := notifyUnary(e, func(ctx context.Context, nc desksidev1.NotificationServiceClient) (*desksidev1.TestSmtpResponse, error) {
		return nc.TestSmtp(ctx, &desksidev1.TestSmtpRequest{To: pos[0]})
	}); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Sent a test message to %s.\n", clean(pos[0]))
	return err
}

func (e *runEnv) notifyWebhookAdd(args []string) error {
	fs := e.flags("notify webhook add", notifyWebhookHelp)
	secretStdin := fs.Bool("secret-stdin", false, "read the signing secret (16+ characters) from standard input")
	pos, err := kbArgs(fs, args, "URL")
	if err != nil {
		return err
	}
	var secret string
	if *secretStdin {
		if secret, err = e.stdinLine("--secret-stdin"); err != nil {
			return err
		}
	}
	resp, err := notifyUnary(e, func(ctx context.Context, nc desksidev1.NotificationServiceClient) (*desksidev1.AddWebhookResponse, error) {
		return nc.AddWebhook(ctx, &desksidev1.AddWebhookRequest{Url: pos[0], Secret: secret})
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Added webhook %s (%s).\n", clean(resp.GetWebhook().GetId()), clean(resp.GetWebhook().GetUrl()))
	if s := resp.GetSecret(); s != "" {
		fmt.Fprintf(e.stdout, "Signing secret (shown once; give it to the receiver): %s\n", clean(s))
	}
	return nil
}

func (e *runEnv) notifyWebhookList(args []string) error {
	fs := e.flags("notify webhook list", notifyWebhookHelp)
	if _, err := kbArgs(fs, args); err != nil {
		return err
	}
	resp, err := notifyUnary(e, func(ctx context.Context, nc desksidev1.NotificationServiceClient) (*desksidev1.ListWebhooksResponse, error) {
		return nc.ListWebhooks(ctx, &desksidev1.ListWebhooksRequest{})
	})
	if err != nil {
		return err
	}
	if len(resp.GetWebhooks()) == 0 {
		_, err := fmt.Fprintln(e.stdout, "No webhooks. Add one with `deskside notify webhook add URL`.")
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL")
	for _, w := range resp.GetWebhooks() {
		fmt.Fprintf(tw, "%s\t%s\n", clean(w.GetId()), clean(w.GetUrl()))
	}
	return tw.Flush()
}

func (e *runEnv) notifyWebhookRemove(args []string) error {
	fs := e.flags("notify webhook remove", notifyWebhookHelp)
	pos, err := kbArgs(fs, args, "ID")
	if err != nil {
		return err
	}
	if _, err := notifyUnary(e, func(ctx context.Context, nc desksidev1.NotificationServiceClient) (*desksidev1.RemoveWebhookResponse, error) {
		return nc.RemoveWebhook(ctx, &desksidev1.RemoveWebhookRequest{Id: pos[0]})
	}); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Removed webhook %s.\n", clean(pos[0]))
	return err
}

func (e *runEnv) notifyWebhookDeliveries(args []string) error {
	fs := e.flags("notify webhook deliveries", notifyWebhookHelp)
	asJSON := fs.Bool("json", false, "print a JSON array of deliveries")
	if _, err := kbArgs(fs, args); err != nil {
		return err
	}
	resp, err := notifyUnary(e, func(ctx context.Context, nc desksidev1.NotificationServiceClient) (*desksidev1.ListWebhookDeliveriesResponse, error) {
		return nc.ListWebhookDeliveries(ctx, &desksidev1.ListWebhookDeliveriesRequest{})
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSONArray(e.stdout, resp.GetDeliveries())
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tWEBHOOK\tEVENT\tTICKET\tATTEMPTS\tSTATE\tLAST")
	for _, d := range resp.GetDeliveries() {
		state := "retrying"
		switch {
		case d.GetOk():
			state = "delivered"
		case d.GetDone():
			state = "failed"
		}
		last := dash(clean(d.GetError()))
		if d.GetHttpStatus() != 0 && d.GetError() == "" {
			last = fmt.Sprintf("HTTP %d", d.GetHttpStatus())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", fmtTime(d.GetTime().AsTime()), clean(d.GetWebhookId()), clean(d.GetEvent()),
			clean(d.GetTicket()), d.GetAttempts(), state, last)
	}
	return tw.Flush()
}

func (e *runEnv) notifyTemplateShow(args []string) error {
	fs := e.flags("notify template show", notifyTemplateHelp)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return errUsage(fs, "expected at most one template name")
	}
	name := ""
	if len(pos) == 1 {
		name = pos[0]
	}
	resp, err := notifyUnary(e, func(ctx context.Context, nc desksidev1.NotificationServiceClient) (*desksidev1.GetTemplateResponse, error) {
		return nc.GetTemplate(ctx, &desksidev1.GetTemplateRequest{Name: name})
	})
	if err != nil {
		return err
	}
	if name == "" {
		_, err := fmt.Fprintf(e.stdout, "Templates: %s\n", clean(strings.Join(resp.GetNames(), ", ")))
		return err
	}
	if resp.GetIsDefault() {
		fmt.Fprintln(e.stderr, "(the built-in default)")
	}
	_, err = fmt.Fprint(e.stdout, cleanText(resp.GetText()))
	return err
}

func (e *runEnv) notifyTemplateSet(args []string) error {
	fs := e.flags("notify template set", notifyTemplateHelp)
	file := fs.String("file", "", "the template file (\"-\": standard input)")
	def := fs.Bool("default", false, "restore the built-in template")
	pos, err := kbArgs(fs, args, "NAME")
	if err != nil {
		return err
	}
	if (*file == "") == !*def {
		return errUsage(fs, "give --file FILE or --default")
	}
	text := ""
	if *file != "" {
		if text, err = e.readArticleFile(*file); err != nil {
			return err
		}
	}
	if _, err := notifyUnary(e, func(ctx context.Context, nc desksidev1.NotificationServiceClient) (*desksidev1.SetTemplateResponse, error) {
		return nc.SetTemplate(ctx, &desksidev1.SetTemplateRequest{Name: pos[0], Text: text})
	}); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Template %s set.\n", clean(pos[0]))
	return err
}

func (e *runEnv) notifyEmail(args []string) error {
	fs := e.flags("notify email", "\nSets a technician's email address for assignment and escalation mail (admin); \"\" removes it.\n\nExample:\n  deskside notify email alice alice@example.com")
	pos, err := kbArgs(fs, args, "TECHNICIAN", "ADDRESS")
	if err != nil {
		return err
	}
	if _, err := notifyUnary(e, func(ctx context.Context, nc desksidev1.NotificationServiceClient) (*desksidev1.SetTechnicianEmailResponse, error) {
		return nc.SetTechnicianEmail(ctx, &desksidev1.SetTechnicianEmailRequest{Technician: pos[0], Email: pos[1]})
	}); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Email of %s set.\n", clean(pos[0]))
	return err
}

const notifyQueueHelp = `
The outbox (admin): every mail and webhook delivery waits there until it
has left the relay. A mail the SMTP server refuses for good (a 5xx reply
such as 550 no such user) fails at once with the server's reply; other
errors are retried with backoff and fail after the last retry. Without
flags, the queue lists what is waiting (pending) and what was given up
(failed); fix the cause (the address, the SMTP settings, the receiver)
and send a failed item again with its ID.

Examples:
  deskside notify queue
  deskside notify queue --failed
  deskside notify retry 42`

func (e *runEnv) notifyQueue(args []string) error {
	fs := e.flags("notify queue", notifyQueueHelp)
	failed := fs.Bool("failed", false, "only what was given up")
	sent := fs.Bool("sent", false, "only what was sent")
	kind := fs.String("kind", "", "mail or webhook (default both)")
	asJSON := fs.Bool("json", false, "print a JSON array of items")
	if _, err := kbArgs(fs, args); err != nil {
		return err
	}
	var states []string
	if *failed {
		states = append(states, "failed")
	}
	if *sent {
		states = append(states, "sent")
	}
	resp, err := notifyUnary(e, func(ctx context.Context, nc desksidev1.NotificationServiceClient) (*desksidev1.ListOutboxResponse, error) {
		return nc.ListOutbox(ctx, &desksidev1.ListOutboxRequest{Kind: *kind, States: states})
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSONArray(e.stdout, resp.GetItems())
	}
	if len(resp.GetItems()) == 0 {
		what := "Nothing is waiting to be sent and nothing has failed."
		switch {
		case *failed && !*sent:
			what = "Nothing has failed."
		case *sent:
			what = "Nothing matches."
		}
		_, err := fmt.Fprintln(e.stdout, what)
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSTATE\tTO\tTICKET\tTEMPLATE\tATTEMPTS\tNEXT\tCREATED\tLAST ERROR")
	for _, it := range resp.GetItems() {
		next := "-"
		if it.GetNextAttempt() != nil {
			next = fmtTime(it.GetNextAttempt().AsTime())
		}
		tmpl := it.GetTemplate()
		if tmpl == "" {
			tmpl = it.GetEvent()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", it.GetId(), clean(it.GetKind()), clean(it.GetState()),
			short(it.GetRecipient(), 40), clean(it.GetTicket()), clean(tmpl), it.GetAttempts(), next, fmtTime(it.GetCreated().AsTime()),
			dash(short(it.GetLastError(), 120)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, it := range resp.GetItems() {
		if it.GetState() == "failed" {
			_, err := fmt.Fprintf(e.stdout, "Send a failed item again with `deskside notify retry ID` once its cause is fixed.\n")
			return err
		}
	}
	return nil
}

func (e *runEnv) notifyRetry(args []string) error {
	fs := e.flags("notify retry", notifyQueueHelp)
	pos, err := kbArgs(fs, args, "ID")
	if err != nil {
		return err
	}
	id, perr := strconv.ParseInt(pos[0], 10, 64)
	if perr != nil || id <= 0 {
		return errUsage(fs, "ID %q is not an outbox item's number (see `deskside notify queue --failed`)", clean(pos[0]))
	}
	resp, err := notifyUnary(e, func(ctx context.Context, nc desksidev1.NotificationServiceClient) (*desksidev1.RetryOutboxResponse, error) {
		return nc.RetryOutbox(ctx, &desksidev1.RetryOutboxRequest{Id: id})
	})
	if err != nil {
		return err
	}
	it := resp.GetItem()
	_, err = fmt.Fprintf(e.stdout, "Queued %s %d (%s) again; it is sent now. Follow it with `deskside notify queue`.\n",
		clean(it.GetKind()), it.GetId(), clean(it.GetTicket()))
	return err
}
