package server

import (
	"sync"
	"time"
)

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
