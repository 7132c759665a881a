package enroll

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/deskside/deskside/internal/atomicfile"
	"github.com/deskside/deskside/internal/pemfile"
)

// RenewAt is when the device certificate is due for renewal: when a third
// of its lifetime is left (about four months for the relay's one-year
// certificates, which leaves that long to retry). A fixed margin such as
// 30 days is not used: it would be due at once for a certificate shorter
// than that.
func (st *State) RenewAt() time.Time {
	leaf := st.Cert.Leaf
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotAfter.Add(-life / 3)
}

// IssuedBy reports whether the device certificate was signed by ca.
func (st *State) IssuedBy(ca *x509.Certificate) bool {
	return st.Cert.Leaf.CheckSignatureFrom(ca) == nil
}

// NewCSR generates a key for a renewal and a CSR for it naming the device.
func (st *State) NewCSR() (crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: st.DeviceID},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CSR: %w", err)
	}
	return key, csr, nil
}

// Renewed checks a renewed certificate (for key, naming this device, signed
// by a pinned CA) and makes it the device's: key and certificate are
// written to staging files, each atomically, then renamed over the current
// ones, key first; Load finishes a renewal interrupted between the renames.
func (st *State) Renewed(certDER []byte, key crypto.Signer) error {
	leaf, err := x509.ParseCertificate(certDER)
	if err != nil {
		return fmt.Errorf("relay sent an unreadable device certificate: %w", err)
	}
	if leaf.Subject.CommonName != st.DeviceID {
		return fmt.Errorf("relay renewed the certificate of %q, this agent is %q", leaf.Subject.CommonName, st.DeviceID)
	}
	if !matches(leaf, key.Public()) {
		return errors.New("relay renewed a certificate for a different key")
	}
	signed := false
	for _, ca := range st.CAs {
		signed = signed || leaf.CheckSignatureFrom(ca) == nil
	}
	if !signed {
		return errors.New("renewed certificate is not signed by a pinned CA")
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(st.Dir, nextKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(st.Dir, nextCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), 0o644); err != nil {
		return err
	}
	if err := promote(st.Dir); err != nil {
		return err
	}
	st.Cert = tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	return nil
}

// promote renames the staged key, then the staged certificate, over the
// current ones.
func promote(dir string) error {
	if err := os.Rename(filepath.Join(dir, nextKeyFile), filepath.Join(dir, keyFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("install renewed key: %w", err)
	}
	if err := os.Rename(filepath.Join(dir, nextCertFile), filepath.Join(dir, certFile)); err != nil {
		return fmt.Errorf("install renewed certificate: %w", err)
	}
	return nil
}

// finishRenewal completes a renewal interrupted after its staging files
// were written: a staged certificate whose key is staged or already
// installed is installed; anything else staged is removed (the current
// pair, which the relay still accepts, stays).
func finishRenewal(dir string) {
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, nextCertFile), filepath.Join(dir, nextKeyFile)); err == nil {
		_ = promote(dir)
		return
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, nextCertFile), filepath.Join(dir, keyFile)); err == nil {
		_ = promote(dir)
		return
	}
	os.Remove(filepath.Join(dir, nextCertFile))
	os.Remove(filepath.Join(dir, nextKeyFile))
}

func matches(leaf *x509.Certificate, pub crypto.PublicKey) bool {
	k, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(leaf.PublicKey)
}

// SetTrusted replaces the pinned CAs with the set the relay sent in
// Welcome (DER), provided the relay's chain of this connection (leaf
// first) verifies under it for host, so that the agent can always
// reconnect. It reports whether the set changed; ca.pem is written
// atomically.
func (st *State) SetTrusted(ders [][]byte, chain []*x509.Certificate, host string) (bool, error) {
	if len(ders) == 0 || len(chain) == 0 {
		return false, nil
	}
	cas := make([]*x509.Certificate, 0, len(ders))
	roots := x509.NewCertPool()
	for _, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return false, fmt.Errorf("relay sent an unreadable CA certificate: %w", err)
		}
		if !c.IsCA {
			return false, fmt.Errorf("relay sent %q as a CA, which is not one", c.Subject.CommonName)
		}
		cas = append(cas, c)
		roots.AddCert(c)
	}
	if same(cas, st.CAs) {
		return false, nil
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter}); err != nil {
		return false, fmt.Errorf("the relay's certificate does not verify under the CAs it sent; keeping the pinned ones: %w", err)
	}
	old := st.CAs
	st.CAs = cas
	if err := st.saveCAs(); err != nil {
		st.CAs = old
		return false, err
	}
	return true, nil
}

func same(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func (st *State) saveCAs() error {
	var b []byte
	for _, c := range st.CAs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return atomicfile.WriteFile(filepath.Join(st.Dir, caFile), b, 0o644)
}

// readCAs reads the pinned CAs: every certificate of path.
func readCAs(path string) ([]*x509.Certificate, error) {
	out, err := pemfile.ReadCertificates(path)
	switch {
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("read pinned CA: %w (enroll again with --force)", err)
	case err != nil:
		return nil, fmt.Errorf("%w (enroll again with --force)", err)
	case len(out) == 0:
		return nil, fmt.Errorf("%s holds no certificate: enroll again with --force", path)
	}
	return out, nil
}
