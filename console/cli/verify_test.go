package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/deskside/deskside/relay/pki"
)

// peerState is the connection state a client sees from a relay with CA a.
func peerState(t *testing.T, a *pki.Authority) tls.ConnectionState {
	t.Helper()
	var cs tls.ConnectionState
	for _, der := range a.ServerTLSConfig().Certificates[0].Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		cs.PeerCertificates = append(cs.PeerCertificates, c)
	}
	return cs
}

func TestVerifyPinned(t *testing.T) {
	a, err := pki.LoadOrCreate(t.TempDir(), pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.LoadOrCreate(t.TempDir(), pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := peerState(t, a)
	c := &conn{relay: "relay.test:7443", host: "relay.test", trust: trust{pin: a.Pin()}}

	ca, err := verifyPinned(cs, a.Pin(), "localhost")
	if err != nil || !ca.Equal(a.CA()) {
		t.Errorf("right pin, covered host: %v", err)
	}

	_, err = verifyPinned(cs, other.Pin(), "localhost")
	if !errors.Is(err, ErrPinMismatch) {
		t.Errorf("wrong pin: %v", err)
	}
	if msg := c.certError(err).Error(); !strings.Contains(msg, "does not match --ca-pin") {
		t.Errorf("wrong pin explained as %q", msg)
	}

	_, err = verifyPinned(cs, a.Pin(), "relay.test")
	var he x509.HostnameError
	if !errors.As(err, &he) {
		t.Fatalf("uncovered host: %v", err)
	}
	if msg := c.certError(err).Error(); !strings.Contains(msg, `not valid for "relay.test"`) {
		t.Errorf("host mismatch explained as %q", msg)
	}

	// A chain from another CA does not verify under the pinned one even
	// when the pin is present: the leaf must chain to the pinned CA.
	mixed := tls.ConnectionState{PeerCertificates: append(peerState(t, other).PeerCertificates[:1], a.CA())}
	if _, err := verifyPinned(mixed, a.Pin(), "localhost"); err == nil {
		t.Error("a leaf from another CA verified under the pinned CA")
	}
	if _, err := verifyPinned(tls.ConnectionState{}, a.Pin(), "localhost"); !errors.Is(err, ErrPinMismatch) {
		t.Errorf("empty chain: %v", err)
	}
}
