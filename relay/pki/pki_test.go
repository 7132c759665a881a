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

// TestServerCertRenewedOnStart: a relay started within 30 days of its
// server certificate's expiry gets a new one under the same CA.
func TestServerCertRenewedOnStart(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreate(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	late := a.ServerCertificate().Leaf.NotAfter.Add(-10 * 24 * time.Hour)
	b, err := LoadOrCreate(dir, Options{Now: func() time.Time { return late }})
	if err != nil {
		t.Fatal(err)
	}
	leaf := b.ServerCertificate().Leaf
	if leaf.Equal(a.ServerCertificate().Leaf) || !leaf.NotAfter.After(late.Add(300*24*time.Hour)) || b.Pin() != a.Pin() {
		t.Fatalf("server certificate not renewed: expires %s", leaf.NotAfter)
	}
}

// TestRotation: Stage adds a trusted CA that signs nothing; Activate
// makes it sign the server certificate and keeps the old CA trusted for
// client certificates; Retire drops it.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreate(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := a.CA()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	oldDevice, err := a.SignDevice(csr, "dev-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := Activate(dir); !errors.Is(err, ErrNotStaged) {
		t.Fatalf("Activate without Stage: %v", err)
	}
	next, err := Stage(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Stage(dir, time.Now()); !errors.Is(err, ErrStaged) {
		t.Fatalf("second Stage: %v", err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if tr := a.Trusted(); len(tr) != 2 || !tr[0].Equal(old) || !tr[1].Equal(next) {
		t.Fatalf("trusted after Stage: %d", len(tr))
	}
	if a.ServerCertificate().Leaf.CheckSignatureFrom(old) != nil {
		t.Fatal("a staged CA signed the server certificate")
	}
	if err := Activate(dir); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if !a.CA().Equal(next) || a.ServerCertificate().Leaf.CheckSignatureFrom(next) != nil {
		t.Fatal("Activate did not switch the CA and the server certificate")
	}
	verify := func(c *x509.Certificate) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: a.ServerTLSConfig().ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		return err
	}
	if err := verify(oldDevice); err != nil {
		t.Fatalf("device certificate of the previous CA after Activate: %v", err)
	}
	if err := Activate(dir); !errors.Is(err, ErrNotStaged) {
		t.Fatalf("second Activate: %v", err)
	}
	st, err := Status(dir)
	if err != nil || !st.Active.Equal(next) || st.Next != nil || len(st.Previous) != 1 {
		t.Fatalf("Status: %+v %v", st, err)
	}
	if _, err := Retire(dir); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := verify(oldDevice); err == nil {
		t.Fatal("device certificate of a retired CA still verifies")
	}
	// A key that does not match its certificate is refused, not served.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := writePair(filepath.Join(dir, "x.pem"), filepath.Join(dir, "x-key.pem"), next.Raw, other); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadPair(filepath.Join(dir, "x.pem"), filepath.Join(dir, "x-key.pem")); err == nil {
		t.Fatal("mismatched key and certificate loaded")
	}
}
