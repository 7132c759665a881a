package auth

import (
	"context"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Budget is a token bucket per key (a client address): Take charges one
// attempt before the work it guards runs, Refund gives it back when the
// attempt turned out to be legitimate (a right password, a good
// enrollment token). Charging first is what makes it race-free: fifty
// concurrent attempts cannot all see a full bucket.
type Budget struct {
	burst  float64
	refill time.Duration // one token comes back every refill
	now    func() time.Time

	mu    sync.Mutex
	keys  map[string]*bucket
	swept time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewBudget returns a budget of burst attempts per key that refills at one
// attempt every refill.
func NewBudget(burst int, refill time.Duration, now func() time.Time) *Budget {
	return &Budget{burst: float64(burst), refill: refill, now: now, keys: make(map[string]*bucket)}
}

// Take charges one attempt to key; false when its budget is spent.
func (b *Budget) Take(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.bucket(key)
	if k.tokens < 1 {
		return false
	}
	k.tokens--
	return true
}

// Refund gives one attempt back to key.
func (b *Budget) Refund(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.bucket(key)
	k.tokens = min(b.burst, k.tokens+1)
}

// bucket returns key's bucket refilled to now; b.mu is held.
func (b *Budget) bucket(key string) *bucket {
	now := b.now()
	if now.Sub(b.swept) > 10*time.Minute { // forget full, idle keys
		for k, v := range b.keys {
			if v.tokens+float64(now.Sub(v.at))/float64(b.refill) >= b.burst {
				delete(b.keys, k)
			}
		}
		b.swept = now
	}
	k := b.keys[key]
	if k == nil {
		k = &bucket{tokens: b.burst, at: now}
		b.keys[key] = k
	}
	if d := now.Sub(k.at); d > 0 {
		k.tokens = min(b.burst, k.tokens+float64(d)/float64(b.refill))
		k.at = now
	}
	return k
}

// Gate lets one check at a time run per account on this relay (across
// the gRPC and web listeners, which share it). Relays sharing a database
// rely on the store's atomic failure count instead.
type Gate struct {
	mu    sync.Mutex
	slots map[string]*slot
}

type slot struct {
	ch    chan struct{}
	users int
}

// NewGate returns an empty gate.
func NewGate() *Gate { return &Gate{slots: make(map[string]*slot)} }

// Enter waits until no other check of name runs, or ctx ends. The
// returned function ends the check.
func (g *Gate) Enter(ctx context.Context, name string) (func(), error) {
	g.mu.Lock()
	s := g.slots[name]
	if s == nil {
		s = &slot{ch: make(chan struct{}, 1)}
		g.slots[name] = s
	}
	s.users++
	g.mu.Unlock()
	leave := func() {
		g.mu.Lock()
		if s.users--; s.users == 0 {
			delete(g.slots, name)
		}
		g.mu.Unlock()
	}
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// TOTP parameters: RFC 6238, 30 s steps, 6 digits, one step of skew
// either way.
const totpPeriod = 30

// TOTPStep checks a 6-digit code and returns the time step it belongs to,
// which the caller records so that the code is accepted once.
func TOTPStep(secret, code string, now time.Time) (int64, bool) {
	if len(code) != 6 {
		return 0, false
	}
	step := now.Unix() / totpPeriod
	for _, s := range []int64{step - 1, step, step + 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtleEqual(want, code) {
			return s, true
		}
	}
	return 0, false
}
