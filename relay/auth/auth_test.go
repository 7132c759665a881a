package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not argon2id PHC", h)
	}
	if ok, err := VerifyPassword(h, "a long enough password"); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, _ := VerifyPassword(h, "a long enough passworD"); ok {
		t.Fatal("wrong password accepted")
	}
	if h2, _ := HashPassword("a long enough password"); h2 == h {
		t.Fatal("same salt twice")
	}
	if _, err := HashPassword("short"); !errors.Is(err, ErrWeakPassword) {
		t.Fatalf("short password: %v", err)
	}
	for _, bad := range []string{"", "$2a$10$bcrypt", "$argon2id$v=19$m=0,t=0,p=0$AA$AA", "$argon2id$v=18$m=1,t=1,p=1$AA$AA"} {
		if _, err := VerifyPassword(bad, "x"); !errors.Is(err, ErrBadHash) {
			t.Errorf("VerifyPassword(%q) = %v", bad, err)
		}
	}
}

func TestTOTP(t *testing.T) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "Deskside", AccountName: "tech"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	code, _ := totp.GenerateCode(key.Secret(), now)
	if !ValidTOTP(key.Secret(), code, now) {
		t.Fatal("current code refused")
	}
	if !ValidTOTP(key.Secret(), code, now.Add(30*time.Second)) {
		t.Fatal("one step of skew refused")
	}
	if ValidTOTP(key.Secret(), code, now.Add(5*time.Minute)) {
		t.Fatal("stale code accepted")
	}
	if ValidTOTP(key.Secret(), "", now) {
		t.Fatal("empty code accepted")
	}
}

func TestSessionToken(t *testing.T) {
	a, ha := NewSessionToken()
	b, _ := NewSessionToken()
	if a == b || !strings.HasPrefix(a, "dss_") || string(HashToken(a)) != string(ha) {
		t.Fatal("session tokens not random or hash mismatch")
	}
}

func TestBudgetChargesFirstAndRefunds(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b := NewBudget(3, 10*time.Second, func() time.Time { return now })
	for i := range 3 {
		if !b.Take("a") {
			t.Fatalf("take %d refused within the burst", i)
		}
	}
	if b.Take("a") {
		t.Fatal("take past the burst allowed")
	}
	if !b.Take("b") {
		t.Fatal("another key is affected")
	}
	b.Refund("a")
	if !b.Take("a") || b.Take("a") {
		t.Fatal("a refund gives back exactly one attempt")
	}
	now = now.Add(10 * time.Second)
	if !b.Take("a") || b.Take("a") {
		t.Fatal("one attempt comes back per refill period")
	}
}

func TestGateOneAtATime(t *testing.T) {
	g := NewGate()
	leave, err := g.Enter(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	other, err := g.Enter(t.Context(), "bob")
	if err != nil {
		t.Fatal("another account waits")
	}
	other()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := g.Enter(ctx, "alice"); !errors.Is(err, context.Canceled) {
		t.Fatalf("second check of alice while one runs: %v, want to wait until the context ends", err)
	}
	leave()
	again, err := g.Enter(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	again()
	if len(g.slots) != 0 {
		t.Errorf("%d slots left after every check ended", len(g.slots))
	}
}

func TestTOTPStep(t *testing.T) {
	secret := "JBSWY3DPEHPK3PXP"
	now := time.Unix(1_800_000_015, 0)
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		code, _ := totp.GenerateCode(secret, now.Add(d))
		step, ok := TOTPStep(secret, code, now)
		if !ok || step != now.Add(d).Unix()/30 {
			t.Errorf("code of %v: step %d, %v", d, step, ok)
		}
	}
	old, _ := totp.GenerateCode(secret, now.Add(-90*time.Second))
	if _, ok := TOTPStep(secret, old, now); ok {
		t.Error("a code three steps old accepted")
	}
	if _, ok := TOTPStep(secret, "", now); ok {
		t.Error("empty code accepted")
	}
}
