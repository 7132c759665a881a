package notify_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/notify"
	"github.com/deskside/deskside/relay/notify/mailtest"
	"github.com/deskside/deskside/relay/store/postgres"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
)

// TestOutboxTwoRelays: two notifiers, each on its own connection pool to
// one PostgreSQL database (two relays sharing a store), queue and send
// mail at once: every mail arrives exactly once.
func TestOutboxTwoRelays(t *testing.T) {
	dsn := pgtest.DSN(t)
	mailSrv := mailtest.Start(t, false)
	var ns [2]*notify.Notifier
	for i := range ns {
		s, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		ns[i] = notify.New(notify.Options{Settings: s, Outbox: s, RootCAs: mailSrv.RootCAs, Poll: 10 * time.Millisecond, Workers: 3})
		t.Cleanup(ns[i].Close)
	}
	if err := ns[0].SetSMTP(t.Context(), notify.SMTP{Host: mailSrv.Host, Port: mailSrv.Port, Username: mailtest.User,
		Password: mailtest.Password, TLS: notify.TLSStartTLS, From: "helpdesk@example.com"}); err != nil {
		t.Fatal(err)
	}
	const mails = 40
	for i := range mails {
		ns[i%2].Ticket(t.Context(), notify.Event{Action: "ticket.create", Code: fmt.Sprintf("DS-%04d", i), Subject: "Printer",
			RequesterName: "Sam", RequesterEmail: fmt.Sprintf("u%d@example.com", i)})
	}
	for i := range mails {
		mailSrv.Wait(t, 20*time.Second, mailtest.To(fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("DS-%04d", i)))
	}
	time.Sleep(200 * time.Millisecond) // many polls by both: nothing is sent again
	seen := map[string]int{}
	for _, m := range mailSrv.Messages() {
		seen[strings.Join(m.To, ",")]++
	}
	for who, k := range seen {
		if k != 1 {
			t.Errorf("%s got %d mails", who, k)
		}
	}
	a, b := ns[0].Stats.MailSent.Load(), ns[1].Stats.MailSent.Load()
	if len(seen) != mails || a+b != mails {
		t.Fatalf("%d recipients mailed, %d+%d sent; want %d", len(seen), a, b, mails)
	}
	t.Logf("relay A sent %d, relay B sent %d", a, b)
}
