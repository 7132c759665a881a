package server_test

import (
	"context"
	"database/sql"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	_ "modernc.org/sqlite"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/notify"
	"github.com/deskside/deskside/relay/notify/mailtest"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/service"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
)

// mailOutbox returns the relay's mail items for ticket code.
func mailOutbox(t *testing.T, r *servertest.Relay, code string) []store.OutboxItem {
	t.Helper()
	items, err := r.Srv.Store().ListOutbox(context.Background(), store.OutboxMail, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.OutboxItem
	for _, it := range items {
		if it.Ticket == code {
			out = append(out, it)
		}
	}
	return out
}

// TestNotifyOutboxRestart: a mail queued while the SMTP server is down
// survives a relay restart and arrives, exactly once, when the server
// comes up.
func TestNotifyOutboxRestart(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testNotifyOutboxRestart(t, "") })
	t.Run("postgres", func(t *testing.T) { testNotifyOutboxRestart(t, pgtest.DSN(t)) })
}

func testNotifyOutboxRestart(t *testing.T, database string) {
	mailSrv := mailtest.Prepare(t, false)
	port := mailtest.FreePort(t) // the server is down
	backoff := make([]time.Duration, 50)
	for i := range backoff {
		backoff[i] = 100 * time.Millisecond
	}
	r1, logs := notifyRelay(t, database, mailSrv, backoff)
	n := r1.Srv.Notifier()
	ctx := context.Background()
	if err := n.SetSMTP(ctx, notify.SMTP{Host: mailSrv.Host, Port: port, Username: mailtest.User, Password: mailtest.Password,
		TLS: notify.TLSStartTLS, From: "helpdesk@example.com"}); err != nil {
		t.Fatal(err)
	}
	tc, cctx := ticketClient(t, r1, "admin", servertest.AdminPassword)
	resp, err := tc.CreateTicket(cctx, &desksidev1.CreateTicketRequest{
		Requester: &desksidev1.TicketRequester{Name: "Sam", Email: "sam@example.com"}, Subject: "Laptop will not boot"})
	if err != nil {
		t.Fatal(err)
	}
	code := resp.GetTicket().GetCode()
	waitFor(t, "a failed attempt", func() bool {
		items := mailOutbox(t, r1, code)
		return len(items) == 1 && items[0].Attempts >= 1 && strings.Contains(items[0].LastError, "connect")
	})
	if !strings.Contains(logs.String(), "mail failed; retrying") {
		t.Fatal("the failed attempt is not logged")
	}
	r1.Stop()

	// The relay starts again on the same store; then the server comes up.
	dir := r1.Dir
	r2 := servertest.Start(t, servertest.Options{Database: database, Modify: func(c *server.Config) {
		c.DataDir, c.SMTPRootCAs, c.WebhookBackoff, c.NotifyPoll = dir, mailSrv.RootCAs, backoff, 50*time.Millisecond
	}})
	if items := mailOutbox(t, r2, code); len(items) != 1 || items[0].Status != store.OutboxPending {
		t.Fatalf("after the restart: %+v", items)
	}
	mailSrv.Serve(t, net.JoinHostPort(mailSrv.Host, strconv.Itoa(port)))
	mailSrv.Wait(t, 10*time.Second, mailtest.To("sam@example.com", "filed it as ticket "+code))
	waitFor(t, "the item marked sent", func() bool {
		items := mailOutbox(t, r2, code)
		return len(items) == 1 && items[0].Status == store.OutboxSent && items[0].LastError == ""
	})
	time.Sleep(300 * time.Millisecond) // several polls: nothing is sent again
	if got := len(mailSrv.Messages()); got != 1 {
		t.Fatalf("%d mails arrived, want exactly 1", got)
	}
	if got := r2.Srv.Notifier().Stats.MailSent.Load(); got != 1 {
		t.Fatalf("MailSent %d after the restart, want 1", got)
	}
}

// TestNotifyStoreRefuses: when the store refuses to queue a ticket's mail
// (here: the database reports a full disk for the outbox), the ticket
// change is kept, the relay logs what to do, and the mail is queued and
// sent once the store takes it again.
func TestNotifyStoreRefuses(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testNotifyStoreRefuses(t, "", func(t *testing.T, r *servertest.Relay, q string) {
			db, err := sql.Open("sqlite", filepath.Join(r.Dir, service.SQLiteFile)+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}, `CREATE TRIGGER outbox_full BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`,
			`DROP TRIGGER outbox_full`)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DSN(t)
		testNotifyStoreRefuses(t, dsn, func(t *testing.T, _ *servertest.Relay, q string) {
			c, err := pgx.Connect(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			if _, err := c.Exec(t.Context(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}, `CREATE FUNCTION outbox_full() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; END $$;
			CREATE TRIGGER outbox_full BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_full()`,
			`DROP TRIGGER outbox_full ON outbox`)
	})
}

func testNotifyStoreRefuses(t *testing.T, database string, exec func(t *testing.T, r *servertest.Relay, q string), fail, heal string) {
	mailSrv := mailtest.Start(t, false)
	r, logs := notifyRelay(t, database, mailSrv, nil)
	n := r.Srv.Notifier()
	ctx := context.Background()
	if err := n.SetSMTP(ctx, notify.SMTP{Host: mailSrv.Host, Port: mailSrv.Port, Username: mailtest.User, Password: mailtest.Password,
		TLS: notify.TLSStartTLS, From: "helpdesk@example.com"}); err != nil {
		t.Fatal(err)
	}
	exec(t, r, fail)
	tc, cctx := ticketClient(t, r, "admin", servertest.AdminPassword)
	resp, err := tc.CreateTicket(cctx, &desksidev1.CreateTicketRequest{
		Requester: &desksidev1.TicketRequester{Name: "Sam", Email: "sam@example.com"}, Subject: "Disk full on the file server"})
	if err != nil {
		t.Fatalf("the ticket change failed with the outbox: %v", err)
	}
	code := resp.GetTicket().GetCode()
	if _, err := tc.GetTicket(cctx, &desksidev1.GetTicketRequest{Code: code}); err != nil {
		t.Fatalf("the ticket is not kept: %v", err)
	}
	if got := n.Stats.Unqueued.Load(); got != 1 {
		t.Fatalf("Unqueued %d, want 1", got)
	}
	log := logs.String()
	if !strings.Contains(log, "notifications not queued") || !strings.Contains(log, "free disk space") || !strings.Contains(log, code) {
		t.Fatalf("the refusal is not logged with a next step:\n%s", log)
	}
	time.Sleep(200 * time.Millisecond) // the workers try again, and are refused
	if got := len(mailSrv.Messages()); got != 0 {
		t.Fatalf("%d mails sent without the outbox", got)
	}
	exec(t, r, heal)
	mailSrv.Wait(t, 10*time.Second, mailtest.To("sam@example.com", "filed it as ticket "+code))
	if got := len(mailSrv.Messages()); got != 1 {
		t.Fatalf("%d mails, want 1", got)
	}
	if !strings.Contains(logs.String(), "the store took them again") {
		t.Fatal("the recovery is not logged")
	}
}

// TestNotifyOutboxRefused: a recipient the SMTP server refuses for good
// (550 no such user) fails at once with the server's reply, while one it
// refuses for now (450) keeps being retried; admins list the failed mail
// with its error (technicians may not) and retry it, audited, and it
// arrives once the server takes it.
func TestNotifyOutboxRefused(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testNotifyOutboxRefused(t, "") })
	t.Run("postgres", func(t *testing.T) { testNotifyOutboxRefused(t, pgtest.DSN(t)) })
}

func testNotifyOutboxRefused(t *testing.T, database string) {
	mailSrv := mailtest.Start(t, false)
	mailSrv.Refuse("nobody@example.com", 550, "no such user")
	mailSrv.Refuse("busy@example.com", 450, "mailbox busy, try later")
	backoff := make([]time.Duration, 50) // a long schedule: only a fast failure ends within the test
	for i := range backoff {
		backoff[i] = 50 * time.Millisecond
	}
	r, logs := notifyRelay(t, database, mailSrv, backoff)
	n := r.Srv.Notifier()
	if err := n.SetSMTP(context.Background(), notify.SMTP{Host: mailSrv.Host, Port: mailSrv.Port, Username: mailtest.User,
		Password: mailtest.Password, TLS: notify.TLSStartTLS, From: "helpdesk@example.com"}); err != nil {
		t.Fatal(err)
	}
	tc, ctx := ticketClient(t, r, "admin", servertest.AdminPassword)
	file := func(email string) string {
		resp, err := tc.CreateTicket(ctx, &desksidev1.CreateTicketRequest{
			Requester: &desksidev1.TicketRequester{Name: "Sam", Email: email}, Subject: "VPN drops every hour"})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetTicket().GetCode()
	}
	gone, busy := file("nobody@example.com"), file("busy@example.com")
	waitFor(t, "the refused mail given up", func() bool {
		items := mailOutbox(t, r, gone)
		return len(items) == 1 && items[0].Status == store.OutboxFailed
	})
	failed := mailOutbox(t, r, gone)[0]
	if failed.Attempts != 1 || !strings.Contains(failed.LastError, "550") || !strings.Contains(failed.LastError, "no such user") {
		t.Fatalf("a 550 refusal: %d attempts, last error %q; want 1 attempt and the server's reply", failed.Attempts, failed.LastError)
	}
	waitFor(t, "the 450 refusal retried", func() bool {
		items := mailOutbox(t, r, busy)
		return len(items) == 1 && items[0].Attempts >= 3
	})
	if it := mailOutbox(t, r, busy)[0]; it.Status != store.OutboxPending || !strings.Contains(it.LastError, "450") {
		t.Fatalf("a 450 refusal: %+v; want pending with the reply", it)
	}
	if !strings.Contains(logs.String(), "mail given up") {
		t.Fatal("the refusal is not logged")
	}

	ns := desksidev1.NewNotificationServiceClient(r.Dial(t))
	list, err := ns.ListOutbox(ctx, &desksidev1.ListOutboxRequest{Kind: "mail", States: []string{"failed"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetItems()) != 1 {
		t.Fatalf("failed mail: %v", list.GetItems())
	}
	got := list.GetItems()[0]
	if got.GetId() != failed.ID || got.GetRecipient() != "nobody@example.com" || got.GetTicket() != gone || got.GetTemplate() != notify.TemplateCreated ||
		got.GetAttempts() != 1 || !strings.Contains(got.GetLastError(), "550") || got.GetNextAttempt() != nil || got.GetCreated() == nil {
		t.Fatalf("listed: %v", got)
	}
	open, err := ns.ListOutbox(ctx, &desksidev1.ListOutboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(open.GetItems()) != 2 || open.GetItems()[0].GetTicket() != busy || open.GetItems()[0].GetState() != "pending" || open.GetItems()[0].GetNextAttempt() == nil {
		t.Fatalf("pending and failed: %v", open.GetItems())
	}
	if _, err := ns.ListOutbox(ctx, &desksidev1.ListOutboxRequest{States: []string{"lost"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("an unknown state: %v", err)
	}

	// Technicians may not see or retry it.
	techs := desksidev1.NewTechnicianServiceClient(r.Dial(t))
	if _, err := techs.CreateTechnician(ctx, &desksidev1.CreateTechnicianRequest{Name: "bob", Role: desksidev1.Role_ROLE_TIER3, Password: "tall-lamp-quiet-river-42"}); err != nil {
		t.Fatal(err)
	}
	_, bctx := r.Console(t, "bob", "tall-lamp-quiet-river-42")
	if _, err := techs.ChangePassword(bctx, &desksidev1.ChangePasswordRequest{CurrentPassword: "tall-lamp-quiet-river-42",
		NewPassword: "quiet-river-tall-lamp-43"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.ListOutbox(bctx, &desksidev1.ListOutboxRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("ListOutbox as tier 3: %v", err)
	}
	if _, err := ns.RetryOutbox(bctx, &desksidev1.RetryOutboxRequest{Id: failed.ID}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("RetryOutbox as tier 3: %v", err)
	}

	// The address is fixed on the mail server; the admin retries.
	mailSrv.Refuse("nobody@example.com", 0, "")
	rr, err := ns.RetryOutbox(ctx, &desksidev1.RetryOutboxRequest{Id: failed.ID})
	if err != nil {
		t.Fatal(err)
	}
	if rr.GetItem().GetState() != "pending" || rr.GetItem().GetAttempts() != 0 {
		t.Fatalf("retried: %v", rr.GetItem())
	}
	mailSrv.Wait(t, 10*time.Second, mailtest.To("nobody@example.com", "filed it as ticket "+gone))
	waitFor(t, "the retried mail marked sent", func() bool {
		items := mailOutbox(t, r, gone)
		return len(items) == 1 && items[0].Status == store.OutboxSent
	})
	if _, err := ns.RetryOutbox(ctx, &desksidev1.RetryOutboxRequest{Id: failed.ID}); status.Code(err) != codes.NotFound ||
		!strings.Contains(err.Error(), "deskside notify queue --failed") {
		t.Fatalf("retrying a sent mail: %v", err)
	}
	evs, err := r.Srv.Store().ListAudit(context.Background(), store.AuditFilter{Action: "notify.outbox.retry"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Actor != "admin" || evs[0].Target != strconv.FormatInt(failed.ID, 10) || !strings.Contains(evs[0].Detail, gone) {
		t.Fatalf("audit: %+v", evs)
	}
}
