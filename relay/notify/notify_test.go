package notify

import (
	"context"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

type memSettings struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memSettings) PutRelaySetting(_ context.Context, name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = append([]byte(nil), data...)
	return nil
}

func (s *memSettings) GetRelaySetting(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	return b, nil
}

type reply struct{ code, from, text string }

func newTestNotifier(t *testing.T) (*Notifier, *[]reply) {
	var got []reply
	n := New(Options{Settings: &memSettings{m: map[string][]byte{}}, Reply: func(_ context.Context, code, from, text string) error {
		got = append(got, reply{code, from, text})
		return nil
	}})
	t.Cleanup(n.Close)
	return n, &got
}

// A subject or name carrying CR/LF cannot add headers to ticket mail.
func TestComposeNoHeaderInjection(t *testing.T) {
	ev := Event{Code: "DS-7K3Q", Subject: "help\r\nBcc: victim@example.com", RequesterName: "Sam\nX-Evil: 1"}
	def, _ := DefaultTemplate(TemplateCreated)
	subject, body, err := render(TemplateCreated, def, ev)
	if err != nil {
		t.Fatal(err)
	}
	from, _ := mail.ParseAddress("helpdesk@example.com")
	to, _ := mail.ParseAddress("sam@example.com")
	raw := compose(SMTP{From: "helpdesk@example.com"}, from, to, Message{Subject: subject, Body: body, Ticket: ev.Code}, time.Now())
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Bcc") != "" || m.Header.Get("X-Evil") != "" {
		t.Fatalf("header injected:\n%s", raw)
	}
	if !strings.Contains(m.Header.Get("References"), "<ticket.DS-7K3Q@example.com>") {
		t.Fatalf("References: %q", m.Header.Get("References"))
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"event":"ticket.create"}`)
	now := time.Unix(1_800_000_000, 0)
	ts := "1800000000"
	h := "t=" + ts + ",v1=" + sign("secret-0123456789", ts, body)
	if err := Verify("secret-0123456789", h, body, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if Verify("secret-0123456789", h, []byte(`{"event":"ticket.delete"}`), now, time.Minute) == nil {
		t.Fatal("a changed body verifies")
	}
	if Verify("secret-0123456789", h, body, now.Add(time.Hour), time.Minute) == nil {
		t.Fatal("an old signature (replay) verifies")
	}
	if Verify("secret-0123456789", "v1=abc", body, now, time.Minute) == nil {
		t.Fatal("a header without timestamp verifies")
	}
}

func TestReceive(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, raw string
		ok        bool
		code      string
		text      string
	}{
		{"multipart quoted-printable, encoded subject tag", "From: Sam <SAM@example.com>\r\nSubject: =?utf-8?q?Re=3A_=5BDS-7K3Q=5D_printer?=\r\n" +
			"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			"It works n=C3=B6w.\r\n\r\nOn Mon, Help Desk wrote:\r\n> old\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b--\r\n", true, "DS-7K3Q", "It works nöw."},
		{"base64 text refused", "From: sam@example.com\r\nSubject: [DS-7K3Q]\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n", false, "", ""},
		{"auto-reply refused", "From: sam@example.com\r\nSubject: [DS-7K3Q] Out of office\r\nAuto-Submitted: auto-replied\r\n\r\naway\r\n", false, "", ""},
		{"only a quote refused", "From: sam@example.com\r\nSubject: [DS-7K3Q]\r\n\r\n> quoted only\r\n", false, "", ""},
		{"html only refused", "From: sam@example.com\r\nSubject: [DS-7K3Q]\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n", false, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, got := newTestNotifier(t)
			code, err := n.Receive(ctx, "sam@example.com", strings.NewReader(c.raw))
			if (err == nil) != c.ok {
				t.Fatalf("Receive: %v", err)
			}
			if !c.ok {
				if len(*got) != 0 || n.Stats.InboundRefused.Load() != 1 {
					t.Fatalf("refused mail reached the ticket: %v", *got)
				}
				return
			}
			if code != c.code || len(*got) != 1 || (*got)[0].text != c.text || (*got)[0].from != "SAM@example.com" {
				t.Fatalf("got %q, %+v", code, *got)
			}
		})
	}
}
