package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"golang.org/x/net/netutil"
)

// MaxInboundBytes caps an answer by email; a larger one is refused.
// MaxInboundConns caps the listener's simultaneous connections.
const (
	MaxInboundBytes = 256 << 10
	MaxInboundConns = 32
)

// ErrRefused wraps why an inbound message was refused (and kept out of
// every ticket).
var ErrRefused = errors.New("notify: inbound mail refused")

var (
	threadRef  = regexp.MustCompile(`<ticket\.(DS-[A-Za-z0-9]{2,16})[.@]`)
	subjectTag = regexp.MustCompile(`\[(DS-[A-Za-z0-9]{2,16})\]`)
)

// Receive takes one inbound message (an answer to a ticket mail): it
// finds the ticket (In-Reply-To/References, else a [DS-XXXX] subject tag),
// checks that the sender is the requester and adds the text as their
// public reply. Malformed, oversized, unmatched or foreign messages are
// refused, logged and counted, and never reach a ticket.
func (n *Notifier) Receive(ctx context.Context, envelopeFrom string, r io.Reader) (code string, err error) {
	defer func() {
		if err != nil {
			n.Stats.InboundRefused.Add(1)
			n.o.Log.Warn("inbound mail refused", "ticket", code, "error", err)
		} else {
			n.Stats.InboundAccepted.Add(1)
			n.o.Log.Info("inbound mail added to ticket", "ticket", code)
		}
	}()
	raw, err := io.ReadAll(io.LimitReader(r, MaxInboundBytes+1))
	if err != nil {
		return "", fmt.Errorf("%w: reading it: %v", ErrRefused, err)
	}
	if len(raw) > MaxInboundBytes {
		_, _ = io.Copy(io.Discard, r)
		return "", fmt.Errorf("%w: larger than %d bytes", ErrRefused, MaxInboundBytes)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", fmt.Errorf("%w: malformed: %v", ErrRefused, err)
	}
	from, err := mail.ParseAddress(msg.Header.Get("From"))
	if err != nil {
		return "", fmt.Errorf("%w: malformed From: %v", ErrRefused, err)
	}
	if envelopeFrom != "" && !strings.EqualFold(envelopeFrom, from.Address) {
		return "", fmt.Errorf("%w: envelope sender and From differ", ErrRefused)
	}
	if v := strings.ToLower(msg.Header.Get("Auto-Submitted")); v != "" && v != "no" {
		return "", fmt.Errorf("%w: an automatic message (Auto-Submitted: %s)", ErrRefused, oneLine(v))
	}
	code = findTicket(msg.Header)
	if code == "" {
		return "", fmt.Errorf("%w: names no ticket (no References to a ticket mail, no [DS-XXXX] in the subject)", ErrRefused)
	}
	text, err := plainText(msg)
	if err != nil {
		return code, fmt.Errorf("%w: malformed body: %v", ErrRefused, err)
	}
	text = stripQuoted(text)
	if strings.TrimSpace(text) == "" {
		return code, fmt.Errorf("%w: no text above the quoted message", ErrRefused)
	}
	if n.o.Reply == nil {
		return code, fmt.Errorf("%w: this relay does not take answers by email", ErrRefused)
	}
	if err := n.o.Reply(ctx, code, from.Address, text); err != nil {
		return code, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	return code, nil
}

func findTicket(h mail.Header) string {
	for _, k := range []string{"In-Reply-To", "References"} {
		if m := threadRef.FindStringSubmatch(h.Get(k)); m != nil {
			return strings.ToUpper(m[1])
		}
	}
	subj, err := (&mime.WordDecoder{}).DecodeHeader(h.Get("Subject"))
	if err != nil {
		subj = h.Get("Subject")
	}
	if m := subjectTag.FindStringSubmatch(subj); m != nil {
		return strings.ToUpper(m[1])
	}
	return ""
}

// plainText returns the message's text/plain content (the first text/plain
// part of a multipart message, one level deep).
func plainText(msg *mail.Message) (string, error) {
	ct := msg.Header.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", err
	}
	switch {
	case mt == "text/plain":
		return decodePart(msg.Body, msg.Header.Get("Content-Transfer-Encoding"))
	case strings.HasPrefix(mt, "multipart/"):
		mr := multipart.NewReader(msg.Body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return "", errors.New("no text/plain part")
			}
			if err != nil {
				return "", err
			}
			pt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
			if err == nil && pt == "text/plain" {
				return decodePart(p, p.Header.Get("Content-Transfer-Encoding"))
			}
		}
	}
	return "", fmt.Errorf("content type %s has no text", mt)
}

func decodePart(r io.Reader, cte string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		return "", errors.New("base64 text is not taken; send plain text")
	}
	b, err := io.ReadAll(r)
	return string(b), err
}

// stripQuoted keeps what the requester wrote: it stops at the quoted
// original ("> " lines, the "On ... wrote:" line before them).
func stripQuoted(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	var out []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, ">") {
			break
		}
		out = append(out, l)
	}
	for len(out) > 0 {
		t := strings.TrimSpace(out[len(out)-1])
		if t == "" || (strings.HasPrefix(t, "On ") && strings.HasSuffix(t, "wrote:")) {
			out = out[:len(out)-1]
			continue
		}
		break
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// Listener is the relay's inbound SMTP server for answers by email.
type Listener struct {
	srv *smtp.Server
	l   net.Listener
}

// Listen starts an SMTP listener on addr that hands every message to
// Receive; domain is the name it greets with. Close it with Close.
func (n *Notifier) Listen(addr, domain string, log *slog.Logger) (*Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("notify: inbound mail listener on %s: %v (change --mail-listen)", addr, err)
	}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{n: n}, nil }))
	s.Domain = domain
	s.MaxMessageBytes = 4 * MaxInboundBytes
	s.MaxRecipients = 10
	s.ReadTimeout, s.WriteTimeout = time.Minute, time.Minute
	s.ErrorLog = slogLogger{log}
	// Connections beyond the limit wait in the kernel's backlog.
	go func() { _ = s.Serve(netutil.LimitListener(l, MaxInboundConns)) }()
	return &Listener{srv: s, l: l}, nil
}

// Addr is the listener's address.
func (l *Listener) Addr() net.Addr { return l.l.Addr() }

// Close stops the listener.
func (l *Listener) Close() error { return l.srv.Close() }

type session struct {
	n    *Notifier
	from string
}

func (s *session) Reset()        { s.from = "" }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *session) Data(r io.Reader) error {
	_, err := s.n.Receive(s.n.ctx, s.from, r)
	_, _ = io.Copy(io.Discard, r)
	if err != nil {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: oneLine(strings.TrimPrefix(err.Error(), "notify: "))}
	}
	return nil
}

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Printf(format string, v ...any) {
	if s.l != nil {
		s.l.Debug("inbound mail: " + fmt.Sprintf(format, v...))
	}
}
func (s slogLogger) Println(v ...any) {
	if s.l != nil {
		s.l.Debug("inbound mail: " + fmt.Sprint(v...))
	}
}
