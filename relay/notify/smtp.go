package notify

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// TLS modes of an SMTP server.
const (
	TLSStartTLS = "starttls" // plain connect, STARTTLS required (port 587)
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
)

const smtpSetting = "notify.smtp"

// SMTP is the outgoing mail server, kept as a relay setting. Password is
// never logged and never returned in full (Masked).
type SMTP struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	TLS      string `json:"tls"`
	From     string `json:"from"`
	// ReplyTo is where requesters' answers go (the relay's inbound
	// address); empty: From.
	ReplyTo string `json:"reply_to,omitempty"`
}

// Check validates the settings.
func (c SMTP) Check() error {
	if c.Host == "" || strings.ContainsAny(c.Host, " /\r\n") {
		return fmt.Errorf("%w: the SMTP host is missing or malformed (--host smtp.example.com)", ErrInvalid)
	}
	if c.Port <= 0 || c.Port > 65535 {
		return fmt.Errorf("%w: the SMTP port %d is out of range (--port 587 or 465)", ErrInvalid, c.Port)
	}
	if c.TLS != TLSStartTLS && c.TLS != TLSImplicit {
		return fmt.Errorf("%w: TLS mode %q: --tls starttls or --tls tls (mail is never sent in the clear)", ErrInvalid, c.TLS)
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("%w: the sender address %q: %v (--from helpdesk@example.com)", ErrInvalid, c.From, err)
	}
	if c.ReplyTo != "" {
		if _, err := mail.ParseAddress(c.ReplyTo); err != nil {
			return fmt.Errorf("%w: the reply-to address %q: %v", ErrInvalid, c.ReplyTo, err)
		}
	}
	if (c.Username == "") != (c.Password == "") {
		return fmt.Errorf("%w: give both --user and --password-stdin, or neither", ErrInvalid)
	}
	return nil
}

// Masked is c with the password hidden.
func (c SMTP) Masked() SMTP {
	if c.Password != "" {
		c.Password = "********"
	}
	return c
}

// ErrNotConfigured: no SMTP server is set; nothing is mailed.
var ErrNotConfigured = errors.New("notify: no SMTP server is configured; nothing is mailed (`deskside notify smtp set`)")

// SMTPSettings returns the configured server or ErrNotConfigured.
func (n *Notifier) SMTPSettings(ctx context.Context) (SMTP, error) {
	b, err := n.o.Settings.GetRelaySetting(ctx, smtpSetting)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(b) == 0) {
		return SMTP{}, ErrNotConfigured
	}
	if err != nil {
		return SMTP{}, err
	}
	var c SMTP
	if err := json.Unmarshal(b, &c); err != nil {
		return SMTP{}, fmt.Errorf("notify: the stored SMTP settings are unreadable (%v); set them again (`deskside notify smtp set`)", err)
	}
	return c, nil
}

// SetSMTP stores the SMTP server; a zero SMTP turns mail off. An empty
// password with the same user keeps the stored one.
func (n *Notifier) SetSMTP(ctx context.Context, c SMTP) error {
	if c == (SMTP{}) {
		return n.o.Settings.PutRelaySetting(ctx, smtpSetting, []byte{}) // NOT NULL in both stores
	}
	if c.Password == "" && c.Username != "" {
		if old, err := n.SMTPSettings(ctx); err == nil && old.Username == c.Username {
			c.Password = old.Password
		}
	}
	if err := c.Check(); err != nil {
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return n.o.Settings.PutRelaySetting(ctx, smtpSetting, b)
}

// Message is one email.
type Message struct {
	To      string
	Subject string
	Body    string
	// Ticket threads the message: its Message-ID and References name
	// the ticket, so that answers find it (inbound.go).
	Ticket string
}

// Sender sends email.
type Sender interface {
	Send(ctx context.Context, c SMTP, m Message) error
}

// SMTPSender sends through an SMTP server over TLS.
type SMTPSender struct {
	// RootCAs verifies the server (nil: the system's).
	RootCAs *x509.CertPool
	Now     func() time.Time
	Timeout time.Duration
}

// Send implements Sender.
func (s *SMTPSender) Send(ctx context.Context, c SMTP, m Message) error {
	if err := c.Check(); err != nil {
		return err
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return fmt.Errorf("notify: recipient %q: %v", m.To, err)
	}
	from, _ := mail.ParseAddress(c.From)
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	msg := compose(c, from, to, m, now())

	timeout := s.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	tlsConf := &tls.Config{ServerName: c.Host, RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12}
	var conn net.Conn
	d := &net.Dialer{}
	if c.TLS == TLSImplicit {
		conn, err = (&tls.Dialer{NetDialer: d, Config: tlsConf}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("notify: connect to %s: %v (check `deskside notify smtp show`)", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	cl, err := smtp.NewClient(conn, c.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("notify: SMTP greeting from %s: %v", addr, err)
	}
	defer cl.Close()
	if err := cl.Hello(helloName(from.Address)); err != nil {
		return fmt.Errorf("notify: SMTP HELO: %v", err)
	}
	if c.TLS == TLSStartTLS {
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			return fmt.Errorf("notify: %s does not offer STARTTLS; use --tls tls (port 465) or a server that does", addr)
		}
		if err := cl.StartTLS(tlsConf); err != nil {
			return fmt.Errorf("notify: STARTTLS with %s: %v", addr, err)
		}
	}
	if c.Username != "" {
		if err := cl.Auth(smtp.PlainAuth("", c.Username, c.Password, c.Host)); err != nil {
			return fmt.Errorf("notify: SMTP sign-in as %s refused: %v (`deskside notify smtp set --user NAME --password-stdin`)", c.Username, err)
		}
	}
	if err := cl.Mail(from.Address); err != nil {
		return refused(fmt.Errorf("notify: MAIL FROM refused: %w", err))
	}
	if err := cl.Rcpt(to.Address); err != nil {
		return refused(fmt.Errorf("notify: recipient %s refused: %w", to.Address, err))
	}
	w, err := cl.Data()
	if err != nil {
		return refused(fmt.Errorf("notify: DATA refused: %w", err))
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("notify: sending the message: %v", err)
	}
	if err := w.Close(); err != nil {
		return refused(fmt.Errorf("notify: the server refused the message: %w", err))
	}
	return cl.Quit()
}

// refused marks a permanent SMTP refusal (a 5xx reply: no such user, a
// sender the server will not relay for, a message it will not take) so
// that the outbox gives the mail up at once instead of retrying; a 4xx
// reply (try later) and network errors stay retryable.
func refused(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code <= 599 {
		return errPermanent{err}
	}
	return err
}

func helloName(addr string) string {
	if _, dom, ok := strings.Cut(addr, "@"); ok && dom != "" {
		return dom
	}
	return "localhost"
}

// ThreadID is the stable id every mail about a ticket references.
func ThreadID(code, domain string) string { return "<ticket." + code + "@" + domain + ">" }

// compose renders an RFC 5322 message, text/plain UTF-8, quoted-printable.
func compose(c SMTP, from, to *mail.Address, m Message, now time.Time) []byte {
	var b strings.Builder
	dom := helloName(from.Address)
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("From", from.String())
	h("To", to.String())
	if c.ReplyTo != "" {
		rt, _ := mail.ParseAddress(c.ReplyTo)
		h("Reply-To", rt.String())
	}
	h("Subject", mime.QEncoding.Encode("utf-8", oneLine(m.Subject)))
	h("Date", now.Format(time.RFC1123Z))
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	if m.Ticket != "" {
		h("Message-ID", "<ticket."+m.Ticket+"."+hex.EncodeToString(rnd[:])+"@"+dom+">")
		h("References", ThreadID(m.Ticket, dom))
		h("In-Reply-To", ThreadID(m.Ticket, dom))
	} else {
		h("Message-ID", "<"+hex.EncodeToString(rnd[:])+"@"+dom+">")
	}
	h("Auto-Submitted", "auto-generated")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	body := strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(body))
	_ = qp.Close()
	return []byte(b.String())
}
