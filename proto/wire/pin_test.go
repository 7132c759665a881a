package wire

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// testChain returns a leaf for "relay.example" signed by a fresh CA.
func testChain(t *testing.T) (leaf, ca *x509.Certificate) {
	t.Helper()
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(der)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relay"}, DNSNames: []string{"relay.example"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ = x509.ParseCertificate(der)
	return leaf, ca
}

func TestCAPin(t *testing.T) {
	// echo -n abc | sha256sum, in base64url without padding.
	if got, want := CAPin([]byte("abc")), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"; got != want {
		t.Fatalf("CAPin(abc) = %s, want %s", got, want)
	}
	if p, err := ParsePin(" " + CAPin([]byte("abc")) + "\n"); err != nil || len(p) != PinLen {
		t.Fatalf("ParsePin of a pin = %q, %v", p, err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("A", 42), strings.Repeat("+", 43), CAPin(nil) + "AA"} {
		if _, err := ParsePin(bad); !errors.Is(err, ErrBadPin) {
			t.Errorf("ParsePin(%q) = %v, want ErrBadPin", bad, err)
		}
	}
}

func TestVerifyPinned(t *testing.T) {
	leaf, ca := testChain(t)
	otherLeaf, otherCA := testChain(t)
	tests := []struct {
		name    string
		chain   []*x509.Certificate
		pin     string
		host    string
		wantErr error // nil: must succeed; ErrPinMismatch; or errAny
	}{
		{"leaf and CA", []*x509.Certificate{leaf, ca}, CAPin(ca.Raw), "relay.example", nil},
		{"no chain", nil, CAPin(ca.Raw), "relay.example", ErrPinMismatch},
		{"other CA's pin", []*x509.Certificate{leaf, ca}, CAPin(otherCA.Raw), "relay.example", ErrPinMismatch},
		{"wrong host", []*x509.Certificate{leaf, ca}, CAPin(ca.Raw), "other.example", errAny},
		{"leaf of another CA", []*x509.Certificate{otherLeaf, ca}, CAPin(ca.Raw), "relay.example", errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := VerifyPinned(tt.chain, tt.pin, tt.host)
			switch {
			case tt.wantErr == nil:
				if err != nil || got != ca {
					t.Fatalf("VerifyPinned = %v, %v; want the CA", got, err)
				}
			case tt.wantErr == errAny:
				if err == nil || errors.Is(err, ErrPinMismatch) {
					t.Fatalf("VerifyPinned = %v; want a verification error", err)
				}
			default:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("VerifyPinned = %v; want %v", err, tt.wantErr)
				}
			}
		})
	}
}

var errAny = errors.New("any verification error")
