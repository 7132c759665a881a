// Package mailtest runs a real SMTP server (emersion/go-smtp over TCP on
// loopback) for tests: STARTTLS or implicit TLS with a certificate of its
// own, PLAIN sign-in after TLS only, and every accepted message kept.
package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// User and Password are the server's only account.
const (
	User     = "relay@example.com"
	Password = "smtp-password-never-logged"
)

// Message is one accepted email.
type Message struct {
	From string
	To   []string
	Raw  []byte
	// Authed: the client signed in; TLS: over TLS.
	Authed, TLS bool
}

// Parsed parses the message.
func (m Message) Parsed() (*mail.Message, error) {
	return mail.ReadMessage(strings.NewReader(string(m.Raw)))
}

// Server is a running SMTP server.
type Server struct {
	Host    string
	Port    int
	RootCAs *x509.CertPool
	// Implicit: TLS from the first byte; else STARTTLS.
	Implicit bool

	cert   tls.Certificate
	mu     sync.Mutex
	msgs   []Message
	cond   chan struct{}
	refuse map[string]*smtp.SMTPError
	// refusedN counts refused RCPT commands.
	refusedN int
}

// Refuse makes the server answer RCPT TO addr with code and text (550
// "no such user" is a permanent refusal, 450 a temporary one) from now
// on; code 0 accepts addr again.
func (s *Server) Refuse(addr string, code int, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse == nil {
		s.refuse = map[string]*smtp.SMTPError{}
	}
	key := strings.ToLower(addr)
	if code == 0 {
		delete(s.refuse, key)
		return
	}
	s.refuse[key] = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 1, 1}, Message: text}
}

// Refused counts the RCPT commands refused so far.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusedN
}

// Start runs a server on a free loopback port until the test ends.
func Start(t testing.TB, implicit bool) *Server {
	t.Helper()
	s := Prepare(t, implicit)
	s.Serve(t, "127.0.0.1:0")
	return s
}

// Prepare makes a server's certificate (RootCAs trusts it) without
// listening yet: Serve starts it, so a test can configure a relay for a
// server that is still down.
func Prepare(t testing.TB, implicit bool) *Server {
	t.Helper()
	cert, pool := selfSigned(t)
	return &Server{Host: "127.0.0.1", RootCAs: pool, Implicit: implicit, cond: make(chan struct{}), cert: cert}
}

// Serve listens on addr (host:port; port 0 picks one) until the test ends.
func (srv *Server) Serve(t testing.TB, addr string) {
	t.Helper()
	tc := &tls.Config{Certificates: []tls.Certificate{srv.cert}, MinVersion: tls.VersionTLS12}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: srv, conn: c}, nil
	}))
	s.Domain = "mail.test"
	s.MaxMessageBytes = 1 << 20
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	var l net.Listener
	var err error
	if srv.Implicit {
		l, err = tls.Listen("tcp", addr, tc)
	} else {
		s.TLSConfig = tc
		l, err = net.Listen("tcp", addr)
	}
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	srv.Port = l.Addr().(*net.TCPAddr).Port
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { s.Close() })
}

// FreePort returns a loopback port that nothing listens on (yet).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Messages returns what was accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait returns the first message after skip accepted ones that match, or
// fails the test after timeout.
func (s *Server) Wait(t testing.TB, timeout time.Duration, match func(Message) bool) Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		for _, m := range s.msgs {
			if match(m) {
				s.mu.Unlock()
				return m
			}
		}
		c := s.cond
		s.mu.Unlock()
		select {
		case <-c:
		case <-deadline:
			t.Fatalf("mailtest: no matching message within %v (%d received)", timeout, len(s.Messages()))
		}
	}
}

// To matches a message sent to addr whose raw text contains want.
func To(addr, want string) func(Message) bool {
	return func(m Message) bool {
		for _, r := range m.To {
			if strings.EqualFold(r, addr) && strings.Contains(string(m.Raw), want) {
				return true
			}
		}
		return false
	}
}

type session struct {
	srv    *Server
	conn   *smtp.Conn
	authed bool
	msg    Message
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != User || pass != Password {
			return errors.New("invalid credentials")
		}
		s.authed = true
		return nil
	}), nil
}
func (s *session) Reset()        { s.msg = Message{} }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.msg.From = from
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.srv.mu.Lock()
	e := s.srv.refuse[strings.ToLower(to)]
	if e != nil {
		s.srv.refusedN++
	}
	s.srv.mu.Unlock()
	if e != nil {
		return e
	}
	s.msg.To = append(s.msg.To, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, tlsOK := s.conn.TLSConnectionState()
	m := s.msg
	m.Raw, m.Authed, m.TLS = b, s.authed, tlsOK
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, m)
	close(s.srv.cond)
	s.srv.cond = make(chan struct{})
	s.srv.mu.Unlock()
	return nil
}

func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailtest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}, pool
}
