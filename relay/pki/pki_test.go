package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoadOrCreateReuses(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreate(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreate(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Pin() != b.Pin() {
		t.Fatal("CA changed on restart")
	}
	if !a.server.Leaf.Equal(b.server.Leaf) {
		t.Fatal("server certificate re-issued without cause")
	}
	for _, f := range []string{caKeyFile, serverKeyFile} {
		fi, _ := os.Stat(filepath.Join(dir, f))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", f, fi.Mode().Perm())
		}
	}
	// A new name re-issues the server certificate under the same CA.
	c, err := LoadOrCreate(dir, Options{Names: []string{"relay.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Pin() != a.Pin() || c.server.Leaf.VerifyHostname("relay.example.test") != nil {
		t.Fatal("server certificate not re-issued for a new name")
	}
	if cfg := c.ServerTLSConfig(); cfg.MinVersion != 0x0304 {
		t.Fatalf("MinVersion %x, want TLS 1.3", cfg.MinVersion)
	}
}

func TestSignDevice(t *testing.T) {
	a, err := LoadOrCreate(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, key)
	cert, err := a.SignDevice(csr, "dev-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "dev-1" || cert.CheckSignatureFrom(a.CA()) != nil {
		t.Fatalf("bad device certificate: %v", cert.Subject)
	}
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	wcsr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, weak)
	if _, err := a.SignDevice(wcsr, "dev-2", time.Now()); !errors.Is(err, ErrBadCSR) {
		t.Fatalf("1024-bit RSA: %v", err)
	}
	tampered := append([]byte{}, csr...)
	tampered[len(tampered)-5] ^= 0xff
	if _, err := a.SignDevice(tampered, "dev-3", time.Now()); !errors.Is(err, ErrBadCSR) {
		t.Fatalf("tampered CSR: %v", err)
	}
}
