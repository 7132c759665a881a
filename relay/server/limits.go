package server

import (
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// loginLimiter rate-limits failed sign-ins per client address (the
// per-account lockout is in the store): after 10 failures an address may
// try again at one attempt every 6 seconds. Successful sign-ins (scripts,
// `make run`) cost nothing.
type loginLimiter struct {
	mu   sync.Mutex
	now  func() time.Time
	ips  map[string]*ipLimit
	last time.Time
}

type ipLimit struct {
	l    *rate.Limiter
	seen time.Time
}

const (
	loginPerMinute = 10
	loginBurst     = 10
)

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, ips: make(map[string]*ipLimit)}
}

// allow reports whether addr (host:port or host) may try to sign in now.
func (l *loginLimiter) allow(addr string) bool {
	return l.limiter(addr).Tokens() >= 1
}

// failed charges a failed sign-in to addr.
func (l *loginLimiter) failed(addr string) {
	l.limiter(addr).Allow()
}

func (l *loginLimiter) limiter(addr string) *rate.Limiter {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last) > 10*time.Minute { // forget idle addresses
		for k, v := range l.ips {
			if now.Sub(v.seen) > 10*time.Minute {
				delete(l.ips, k)
			}
		}
		l.last = now
	}
	e := l.ips[host]
	if e == nil {
		e = &ipLimit{l: rate.NewLimiter(rate.Every(time.Minute/loginPerMinute), loginBurst)}
		l.ips[host] = e
	}
	e.seen = now
	return e.l
}

// pendingTOTP holds TOTP secrets between BeginTotpEnrollment and
// ConfirmTotpEnrollment (ten minutes; a relay restart forgets them and
// the technician starts again).
type pendingTOTP struct {
	mu      sync.Mutex
	now     func() time.Time
	secrets map[string]pendingSecret
}

type pendingSecret struct {
	secret  string
	expires time.Time
}

func newPendingTOTP(now func() time.Time) *pendingTOTP {
	return &pendingTOTP{now: now, secrets: make(map[string]pendingSecret)}
}

func (p *pendingTOTP) put(name, secret string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.secrets[name] = pendingSecret{secret: secret, expires: p.now().Add(10 * time.Minute)}
}

func (p *pendingTOTP) take(name string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps, ok := p.secrets[name]
	if !ok || p.now().After(ps.expires) {
		delete(p.secrets, name)
		return "", false
	}
	return ps.secret, true
}

func (p *pendingTOTP) drop(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.secrets, name)
}
