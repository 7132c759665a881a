package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

var enrollTokenTests = []subtest{
	{"Consume", testEnrollTokenConsume},
	{"MultiUse", testEnrollTokenMultiUse},
	{"ConcurrentSingleUse", testEnrollTokenConcurrent(1)},
	{"ConcurrentThreeUses", testEnrollTokenConcurrent(3)},
}

var technicianTests = []subtest{
	{"CreateGetCount", testTechnicianCreateGet},
	{"SetLoginState", testTechnicianLoginState},
	{"Update", testTechnicianUpdate},
	{"ChargeLogin", testChargeLogin},
	{"ChargeLoginConcurrent", testChargeLoginConcurrent},
	{"TOTPStep", testTOTPStep},
	{"TOTPStepConcurrent", testTOTPStepConcurrent},
}

var sessionTests = []subtest{
	{"Lifecycle", testSessionLifecycle},
	{"DeleteTechnicianSessions", testDeleteTechnicianSessions},
}

func secret(s string) []byte { return bytes.Repeat([]byte(s), 32/len(s)) }

func token(id string, uses int) store.EnrollToken {
	return store.EnrollToken{
		ID: id, SecretHash: secret("s" + id), ExpiresAt: t0.Add(24 * time.Hour), Uses: uses,
		CreatedBy: "admin", CreatedAt: t0,
	}
}

func testEnrollTokenConsume(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := t0.Add(time.Hour)
	tok := token("tok1", 1)
	ok(t, s.CreateEnrollToken(ctx, tok), "CreateEnrollToken")
	dup := token("tok1", 5)
	wantErr(t, s.CreateEnrollToken(ctx, dup), store.ErrExists, "CreateEnrollToken(duplicate id)")
	expired := token("tok-exp", 1)
	expired.ExpiresAt = now
	ok(t, s.CreateEnrollToken(ctx, expired), "CreateEnrollToken(expired)")

	tests := []struct {
		name   string
		id     string
		secret []byte
		now    time.Time
		want   error
	}{
		{"unknown id", "nope", tok.SecretHash, now, store.ErrTokenUnknown},
		{"wrong secret", tok.ID, secret("x"), now, store.ErrTokenUnknown},
		{"secret prefix", tok.ID, tok.SecretHash[:16], now, store.ErrTokenUnknown},
		{"empty secret", tok.ID, nil, now, store.ErrTokenUnknown},
		{"expired at ExpiresAt", expired.ID, expired.SecretHash, now, store.ErrTokenExpired},
		{"expired after ExpiresAt", expired.ID, expired.SecretHash, now.Add(time.Nanosecond), store.ErrTokenExpired},
		{"expired, wrong secret", expired.ID, tok.SecretHash, now, store.ErrTokenUnknown},
		{"ok just before expiry", tok.ID, tok.SecretHash, tok.ExpiresAt.Add(-time.Nanosecond), nil},
		{"used up", tok.ID, tok.SecretHash, now, store.ErrTokenUsed},
		{"used up, wrong secret", tok.ID, secret("x"), now, store.ErrTokenUnknown},
		{"used up and expired", tok.ID, tok.SecretHash, tok.ExpiresAt.Add(time.Hour), store.ErrTokenExpired},
	}
	for _, tc := range tests {
		err := s.ConsumeEnrollToken(ctx, tc.id, tc.secret, tc.now)
		if tc.want == nil {
			ok(t, err, "%s: ConsumeEnrollToken", tc.name)
			continue
		}
		wantErr(t, err, tc.want, "%s: ConsumeEnrollToken", tc.name)
	}

	// ("used up" above also shows that the duplicate create did not
	// replace tok1's single use with five.)
	// A failed attempt (wrong secret, expired) uses nothing: the single use
	// is still there afterwards.
	extended := token("tok2", 1)
	ok(t, s.CreateEnrollToken(ctx, extended), "CreateEnrollToken")
	wantErr(t, s.ConsumeEnrollToken(ctx, extended.ID, secret("x"), now), store.ErrTokenUnknown, "wrong secret")
	wantErr(t, s.ConsumeEnrollToken(ctx, extended.ID, extended.SecretHash, extended.ExpiresAt), store.ErrTokenExpired, "expired")
	ok(t, s.ConsumeEnrollToken(ctx, extended.ID, extended.SecretHash, now), "ConsumeEnrollToken after failed attempts")
	wantErr(t, s.ConsumeEnrollToken(ctx, extended.ID, extended.SecretHash, now), store.ErrTokenUsed, "second use")

	zero := token("tok-zero", 0)
	ok(t, s.CreateEnrollToken(ctx, zero), "CreateEnrollToken(no uses)")
	wantErr(t, s.ConsumeEnrollToken(ctx, zero.ID, zero.SecretHash, now), store.ErrTokenUsed, "token created with no uses")
}

func testEnrollTokenMultiUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := token("multi", 3)
	ok(t, s.CreateEnrollToken(ctx, tok), "CreateEnrollToken")
	for i := range 3 {
		ok(t, s.ConsumeEnrollToken(ctx, tok.ID, tok.SecretHash, t0), "use %d", i+1)
	}
	wantErr(t, s.ConsumeEnrollToken(ctx, tok.ID, tok.SecretHash, t0), store.ErrTokenUsed, "fourth use")
	wantErr(t, s.ConsumeEnrollToken(ctx, tok.ID, tok.SecretHash, t0), store.ErrTokenUsed, "fifth use")
}

// testEnrollTokenConcurrent has 10 enrollments race for a token with uses
// uses: exactly uses of them win, the rest get ErrTokenUsed. The race is
// run for several tokens, as one round may happen not to overlap.
func testEnrollTokenConcurrent(uses int) func(t *testing.T, s store.Store) {
	return func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const rounds, consumers = 20, 10
		for r := range rounds {
			tok := token(fmt.Sprintf("race-%d", r), uses)
			ok(t, s.CreateEnrollToken(ctx, tok), "CreateEnrollToken")
			errs := barrier(consumers, func(int) error {
				return s.ConsumeEnrollToken(ctx, tok.ID, tok.SecretHash, t0)
			})
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, store.ErrTokenUsed):
					t.Errorf("round %d, consumer %d: %v, want nil or %v", r, i, err, store.ErrTokenUsed)
				}
			}
			if won != uses {
				t.Fatalf("round %d: %d consumers succeeded, want exactly %d", r, won, uses)
			}
		}
	}
}

func technician(name string) store.Technician {
	return store.Technician{
		Name:         name,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
		Role:         2,
		TOTPSecret:   "JBSWY3DPEHPK3PXP",
		FailedLogins: 0,
		CreatedAt:    t0,
	}
}

func testTechnicianCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	n, err := s.CountTechnicians(ctx)
	ok(t, err, "CountTechnicians(empty)")
	if n != 0 {
		t.Fatalf("CountTechnicians(empty) = %d", n)
	}
	_, err = s.GetTechnician(ctx, "alice")
	wantErr(t, err, store.ErrNotFound, "GetTechnician(unknown)")

	alice := technician("alice")
	ok(t, s.CreateTechnician(ctx, alice), "CreateTechnician")
	got, err := s.GetTechnician(ctx, "alice")
	ok(t, err, "GetTechnician")
	same(t, "GetTechnician", got, alice)

	dup := technician("alice")
	dup.Role = 3
	wantErr(t, s.CreateTechnician(ctx, dup), store.ErrExists, "CreateTechnician(duplicate)")
	got, err = s.GetTechnician(ctx, "alice")
	ok(t, err, "GetTechnician after duplicate")
	same(t, "GetTechnician after duplicate", got, alice)

	bob := technician("bob")
	bob.TOTPSecret, bob.Role, bob.FailedLogins, bob.LockedUntil, bob.TOTPLastStep = "", 1, 2, t0.Add(15*time.Minute), 59_000_123
	ok(t, s.CreateTechnician(ctx, bob), "CreateTechnician(bob)")
	got, err = s.GetTechnician(ctx, "bob")
	ok(t, err, "GetTechnician(bob)")
	same(t, "GetTechnician(bob)", got, bob)

	n, err = s.CountTechnicians(ctx)
	ok(t, err, "CountTechnicians")
	if n != 2 {
		t.Fatalf("CountTechnicians = %d, want 2", n)
	}
}

func testTechnicianLoginState(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := technician("alice")
	ok(t, s.CreateTechnician(ctx, alice), "CreateTechnician")
	ok(t, s.CreateTechnician(ctx, technician("bob")), "CreateTechnician")

	locked := t0.Add(30*time.Minute + 9)
	ok(t, s.SetLoginState(ctx, "alice", 5, locked), "SetLoginState")
	got, err := s.GetTechnician(ctx, "alice")
	ok(t, err, "GetTechnician")
	want := alice
	want.FailedLogins, want.LockedUntil = 5, locked
	same(t, "after SetLoginState", got, want)

	// Reset after a good login.
	ok(t, s.SetLoginState(ctx, "alice", 0, time.Time{}), "SetLoginState(reset)")
	got, err = s.GetTechnician(ctx, "alice")
	ok(t, err, "GetTechnician")
	same(t, "after reset", got, alice)
	if !got.LockedUntil.IsZero() {
		t.Errorf("LockedUntil after reset = %v, want zero", got.LockedUntil)
	}

	got, err = s.GetTechnician(ctx, "bob")
	ok(t, err, "GetTechnician(bob)")
	same(t, "bob untouched", got, technician("bob"))

	wantErr(t, s.SetLoginState(ctx, "nope", 1, locked), store.ErrNotFound, "SetLoginState(unknown)")
}

func testTechnicianUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := technician("alice")
	ok(t, s.CreateTechnician(ctx, alice), "CreateTechnician")
	ok(t, s.SetLoginState(ctx, "alice", 2, t0.Add(time.Minute)), "SetLoginState")

	// Only password hash, role and TOTP secret change; the login state
	// and creation time stay.
	upd := store.Technician{Name: "alice", PasswordHash: "$argon2id$new", Role: 3, TOTPSecret: "", FailedLogins: 99, LockedUntil: t0.Add(99 * time.Hour), CreatedAt: t0.Add(99 * time.Hour)}
	ok(t, s.UpdateTechnician(ctx, upd), "UpdateTechnician")
	got, err := s.GetTechnician(ctx, "alice")
	ok(t, err, "GetTechnician")
	want := alice
	want.PasswordHash, want.Role, want.TOTPSecret = upd.PasswordHash, upd.Role, upd.TOTPSecret
	want.FailedLogins, want.LockedUntil = 2, t0.Add(time.Minute)
	same(t, "after UpdateTechnician", got, want)

	wantErr(t, s.UpdateTechnician(ctx, technician("nope")), store.ErrNotFound, "UpdateTechnician(unknown)")
	n, err := s.CountTechnicians(ctx)
	ok(t, err, "CountTechnicians")
	if n != 1 {
		t.Errorf("CountTechnicians = %d after updating an unknown technician, want 1", n)
	}
}

func testSessionLifecycle(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, name := range []string{"alice", "bob"} {
		ok(t, s.CreateTechnician(ctx, technician(name)), "CreateTechnician")
	}
	_, err := s.GetSession(ctx, secret("none"))
	wantErr(t, err, store.ErrNotFound, "GetSession(unknown)")

	var sessions []store.Session
	for i, name := range []string{"alice", "alice", "bob"} {
		se := store.Session{TokenHash: secret(fmt.Sprintf("t%d", i)), Technician: name, CreatedAt: t0, ExpiresAt: t0.Add(12*time.Hour + time.Duration(i))}
		ok(t, s.CreateSession(ctx, se), "CreateSession(%d)", i)
		sessions = append(sessions, se)
	}
	dup := sessions[0]
	dup.Technician = "bob"
	wantErr(t, s.CreateSession(ctx, dup), store.ErrExists, "CreateSession(duplicate token)")

	for i, se := range sessions {
		got, err := s.GetSession(ctx, se.TokenHash)
		ok(t, err, "GetSession(%d)", i)
		same(t, fmt.Sprintf("GetSession(%d)", i), got, se)
	}

	// Expired sessions are still returned; the caller checks ExpiresAt.
	old := store.Session{TokenHash: secret("old"), Technician: "bob", CreatedAt: t0.Add(-48 * time.Hour), ExpiresAt: t0.Add(-24 * time.Hour)}
	ok(t, s.CreateSession(ctx, old), "CreateSession(expired)")
	got, err := s.GetSession(ctx, old.TokenHash)
	ok(t, err, "GetSession(expired)")
	same(t, "GetSession(expired)", got, old)

	ok(t, s.DeleteSession(ctx, sessions[0].TokenHash), "DeleteSession")
	_, err = s.GetSession(ctx, sessions[0].TokenHash)
	wantErr(t, err, store.ErrNotFound, "GetSession after DeleteSession")
	ok(t, s.DeleteSession(ctx, sessions[0].TokenHash), "DeleteSession(already deleted)")
	ok(t, s.DeleteSession(ctx, secret("never")), "DeleteSession(unknown)")

	// Only that session went.
	for _, se := range sessions[1:] {
		_, err := s.GetSession(ctx, se.TokenHash)
		ok(t, err, "GetSession(other session)")
	}
}

// The lockout policy the ChargeLogin cases use.
const (
	chargeMax  = 5
	chargeLock = 15 * time.Minute
)

func testChargeLogin(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := technician("alice")
	ok(t, s.CreateTechnician(ctx, alice), "CreateTechnician")
	ok(t, s.CreateTechnician(ctx, technician("bob")), "CreateTechnician(bob)")
	_, err := s.ChargeLogin(ctx, "nope", t0, chargeMax, chargeLock)
	wantErr(t, err, store.ErrNotFound, "ChargeLogin(unknown)")

	now := t0
	for i := 1; i < chargeMax; i++ {
		c, err := s.ChargeLogin(ctx, "alice", now, chargeMax, chargeLock)
		ok(t, err, "ChargeLogin %d", i)
		if c.Failures != i || c.Locked || c.Technician.PasswordHash != alice.PasswordHash || c.Technician.TOTPSecret != alice.TOTPSecret {
			t.Fatalf("ChargeLogin %d = %+v, want %d failures, not locked, alice's hash and secret", i, c, i)
		}
	}
	c, err := s.ChargeLogin(ctx, "alice", now, chargeMax, chargeLock)
	ok(t, err, "ChargeLogin %d", chargeMax)
	if c.Failures != chargeMax || !c.Locked || !c.Technician.LockedUntil.Equal(now.Add(chargeLock)) {
		t.Fatalf("ChargeLogin %d = %+v, want the lock until %v", chargeMax, c, now.Add(chargeLock))
	}
	c, err = s.ChargeLogin(ctx, "alice", now.Add(chargeLock-1), chargeMax, chargeLock)
	wantErr(t, err, store.ErrLocked, "ChargeLogin while locked")
	if !c.Technician.LockedUntil.Equal(now.Add(chargeLock)) {
		t.Errorf("ChargeLogin while locked: LockedUntil %v, want %v", c.Technician.LockedUntil, now.Add(chargeLock))
	}
	// bob is not affected.
	if c, err := s.ChargeLogin(ctx, "bob", now, chargeMax, chargeLock); err != nil || c.Failures != 1 {
		t.Fatalf("ChargeLogin(bob) = %+v, %v; want 1 failure", c, err)
	}

	// The lock ends on its own; the count starts again.
	c, err = s.ChargeLogin(ctx, "alice", now.Add(chargeLock), chargeMax, chargeLock)
	ok(t, err, "ChargeLogin after the lock")
	if c.Failures != 1 || c.Locked {
		t.Fatalf("ChargeLogin after the lock = %+v, want 1 failure", c)
	}
	// A right password (or an admin) resets the count.
	ok(t, s.SetLoginState(ctx, "alice", 0, time.Time{}), "SetLoginState(reset)")
	c, err = s.ChargeLogin(ctx, "alice", now.Add(chargeLock), chargeMax, chargeLock)
	ok(t, err, "ChargeLogin after reset")
	if c.Failures != 1 {
		t.Fatalf("ChargeLogin after reset = %+v, want 1 failure", c)
	}
}

// testChargeLoginConcurrent has 50 sign-ins race for one account: exactly
// chargeMax are counted (one of them locks it), the rest find it locked.
func testChargeLoginConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const rounds, attempts = 5, 50
	for r := range rounds {
		name := fmt.Sprintf("race-%d", r)
		ok(t, s.CreateTechnician(ctx, technician(name)), "CreateTechnician")
		var charges [attempts]store.LoginCharge
		errs := barrier(attempts, func(i int) error {
			var err error
			charges[i], err = s.ChargeLogin(ctx, name, t0, chargeMax, chargeLock)
			return err
		})
		counted, locks := map[int]bool{}, 0
		for i, err := range errs {
			switch {
			case err == nil:
				if counted[charges[i].Failures] {
					t.Errorf("round %d: count %d seen twice", r, charges[i].Failures)
				}
				counted[charges[i].Failures] = true
				if charges[i].Locked {
					locks++
				}
			case !errors.Is(err, store.ErrLocked):
				t.Errorf("round %d, attempt %d: %v, want nil or %v", r, i, err, store.ErrLocked)
			}
		}
		if len(counted) != chargeMax || locks != 1 {
			t.Fatalf("round %d: %d attempts counted, %d locked; want exactly %d and 1", r, len(counted), locks, chargeMax)
		}
	}
}

func testTOTPStep(t *testing.T, s store.Store) {
	ctx := t.Context()
	ok(t, s.CreateTechnician(ctx, technician("alice")), "CreateTechnician")
	wantErr(t, s.UseTOTPStep(ctx, "nope", 10), store.ErrNotFound, "UseTOTPStep(unknown)")
	ok(t, s.UseTOTPStep(ctx, "alice", 59_000_010), "UseTOTPStep")
	wantErr(t, s.UseTOTPStep(ctx, "alice", 59_000_010), store.ErrTOTPReused, "UseTOTPStep(same step)")
	wantErr(t, s.UseTOTPStep(ctx, "alice", 59_000_009), store.ErrTOTPReused, "UseTOTPStep(earlier step)")
	ok(t, s.UseTOTPStep(ctx, "alice", 59_000_011), "UseTOTPStep(next step)")
	got, err := s.GetTechnician(ctx, "alice")
	ok(t, err, "GetTechnician")
	if got.TOTPLastStep != 59_000_011 {
		t.Errorf("TOTPLastStep = %d, want 59000011", got.TOTPLastStep)
	}
}

// testTOTPStepConcurrent replays one code 20 times at once: one wins.
func testTOTPStepConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	ok(t, s.CreateTechnician(ctx, technician("alice")), "CreateTechnician")
	for r := range int64(10) {
		errs := barrier(20, func(int) error { return s.UseTOTPStep(ctx, "alice", 100+r) })
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrTOTPReused):
				t.Errorf("round %d, attempt %d: %v", r, i, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: the same step was accepted %d times, want once", r, won)
		}
	}
}

func testDeleteTechnicianSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, name := range []string{"alice", "bob"} {
		ok(t, s.CreateTechnician(ctx, technician(name)), "CreateTechnician")
	}
	for i, name := range []string{"alice", "alice", "bob"} {
		se := store.Session{TokenHash: secret(fmt.Sprintf("t%d", i)), Technician: name, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		ok(t, s.CreateSession(ctx, se), "CreateSession(%d)", i)
	}
	n, err := s.DeleteTechnicianSessions(ctx, "alice")
	ok(t, err, "DeleteTechnicianSessions")
	if n != 2 {
		t.Errorf("DeleteTechnicianSessions = %d, want 2", n)
	}
	for i, want := range []error{store.ErrNotFound, store.ErrNotFound, nil} {
		if _, err := s.GetSession(ctx, secret(fmt.Sprintf("t%d", i))); !errors.Is(err, want) {
			t.Errorf("GetSession(%d) after deleting alice's: %v, want %v", i, err, want)
		}
	}
	n, err = s.DeleteTechnicianSessions(ctx, "nobody")
	if err != nil || n != 0 {
		t.Errorf("DeleteTechnicianSessions(unknown) = %d, %v; want 0, nil", n, err)
	}
}
