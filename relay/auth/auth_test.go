package auth

import (
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
