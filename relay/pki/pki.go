// Package pki is the relay's certificate authority. On first start it
// creates a CA and a server certificate in the relay's data directory and
// reuses them afterwards; it signs device certificates from CSRs at
// enrollment and builds the TLS 1.3 configuration the relay serves with.
//
// Agents pin the CA by the SHA-256 of its DER bytes (see wire.CAPin), which an
// enrollment token carries, so enrollment needs no prior trust setup.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/deskside/deskside/internal/atomicfile"
	"github.com/deskside/deskside/internal/pemfile"
	"github.com/deskside/deskside/proto/wire"
)

// File names inside the data directory.
const (
	CAFile         = "ca.pem"
	caKeyFile      = "ca-key.pem"
	serverFile     = "server.pem"
	serverKeyFile  = "server-key.pem"
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 397 * 24 * time.Hour
	// DeviceValidity is how long a device certificate is valid.
	DeviceValidity = 365 * 24 * time.Hour
)

var (
	// ErrBadCSR is returned when a CSR cannot be parsed, its signature does
	// not verify, or its key type is not accepted.
	ErrBadCSR = errors.New("pki: bad certificate signing request")
)

// Authority is the relay CA plus the relay's own serving certificate.
type Authority struct {
	dir    string
	ca     *x509.Certificate
	caKey  crypto.Signer
	server tls.Certificate
}

// Options controls LoadOrCreate.
type Options struct {
	// Names are the DNS names and IP addresses the server certificate must
	// cover, besides localhost, 127.0.0.1, ::1 and the host name.
	Names []string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// LoadOrCreate loads the CA from dir, creating it on first use, and makes
// sure the server certificate exists, covers every name and is not close
// to expiry (re-issuing it otherwise).
func LoadOrCreate(dir string, opts Options) (*Authority, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create data directory: %w", err)
	}
	a := &Authority{dir: dir}
	ca, caKey, err := loadPair(filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		ca, caKey, err = createCA(dir, opts.Now())
		if err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	a.ca, a.caKey = ca, caKey

	names := serverNames(opts.Names)
	leaf, key, err := loadPair(filepath.Join(dir, serverFile), filepath.Join(dir, serverKeyFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err != nil || !covers(leaf, names) || opts.Now().Add(30*24*time.Hour).After(leaf.NotAfter) ||
		leaf.CheckSignatureFrom(ca) != nil {
		leaf, key, err = a.createServer(names, opts.Now())
		if err != nil {
			return nil, err
		}
	}
	a.server = tls.Certificate{
		Certificate: [][]byte{leaf.Raw, ca.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}
	return a, nil
}

// CA returns the CA certificate.
func (a *Authority) CA() *x509.Certificate { return a.ca }

// CAPath is the PEM file agents and the CLI can be pointed at.
func (a *Authority) CAPath() string { return filepath.Join(a.dir, CAFile) }

// Pin returns the CA pin carried by enrollment tokens (wire.CAPin).
func (a *Authority) Pin() string { return wire.CAPin(a.ca.Raw) }

// ServerTLSConfig returns the relay's TLS configuration: TLS 1.3 only,
// client certificates verified against the CA when given (Enroll is the
// one call made without one; every other agent call checks for it).
func (a *Authority) ServerTLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(a.ca)
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{a.server},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		NextProtos:   []string{"h2"},
	}
}

// SignDevice verifies csr and issues a client certificate for deviceID.
func (a *Authority) SignDevice(csrDER []byte, deviceID string, now time.Time) (*x509.Certificate, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature does not verify: %v", ErrBadCSR, err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, fmt.Errorf("%w: ECDSA curve %s not accepted", ErrBadCSR, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%w: RSA key of %d bits is too small", ErrBadCSR, k.N.BitLen())
		}
	default:
		return nil, fmt.Errorf("%w: key type %T not accepted", ErrBadCSR, csr.PublicKey)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: deviceID, Organization: []string{"Deskside device"}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(DeviceValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.ca, csr.PublicKey, a.caKey)
	if err != nil {
		return nil, fmt.Errorf("pki: sign device certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

func serverNames(extra []string) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		names = append(names, h)
	}
	for _, n := range extra {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

func covers(c *x509.Certificate, names []string) bool {
	for _, n := range names {
		if c.VerifyHostname(n) != nil {
			return false
		}
	}
	return true
}

func createCA(dir string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "Deskside relay CA", Organization: []string{"Deskside"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create CA: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writePair(filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile), der, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func (a *Authority) createServer(names []string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "Deskside relay"},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(serverValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.ca, &key.PublicKey, a.caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create server certificate: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writePair(filepath.Join(a.dir, serverFile), filepath.Join(a.dir, serverKeyFile), der, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

// writePair writes a certificate (0644) and its key (0600), each through a
// temporary file and rename so a crash or full disk never leaves half a file.
func writePair(certPath, keyPath string, der []byte, key crypto.Signer) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: marshal key: %w", err)
	}
	if err := atomicfile.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return atomicfile.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	cert, err := pemfile.ReadCertificate(certPath)
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: read %s: %w", keyPath, err)
	}
	blk, _ := pem.Decode(kb)
	if blk == nil {
		return nil, nil, fmt.Errorf("pki: %s holds no PEM block", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: parse %s: %w", keyPath, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("pki: %s: key type %T cannot sign", keyPath, k)
	}
	return cert, signer, nil
}
