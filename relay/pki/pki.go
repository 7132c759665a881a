// Package pki is the relay's certificate authority. On first start it
// creates a CA and a server certificate in the relay's data directory and
// reuses them afterwards; it signs device certificates from CSRs at
// enrollment and builds the TLS 1.3 configuration the relay serves with.
//
// Agents pin the CA by the SHA-256 of its DER bytes (see wire.CAPin), which an
// enrollment token carries, so enrollment needs no prior trust setup.
//
// The CA is rotated in three steps (Stage, Activate, Retire; `deskside-relay
// ca rotate`, docs/adr/0019): a staged next CA is trusted and handed to
// agents before it signs anything, and a previous CA stays trusted for
// device certificates until it is retired. A running relay picks the files
// up with Reload.
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
	"sync"
	"time"

	"github.com/deskside/deskside/internal/atomicfile"
	"github.com/deskside/deskside/internal/pemfile"
	"github.com/deskside/deskside/proto/wire"
)

// File names inside the data directory.
const (
	CAFile        = "ca.pem"
	caKeyFile     = "ca-key.pem"
	serverFile    = "server.pem"
	serverKeyFile = "server-key.pem"
	// NextCAFile and its key are a staged CA (Stage), PreviousCAFile the
	// CAs an Activate replaced, still trusted for device certificates.
	NextCAFile     = "ca-next.pem"
	nextCAKeyFile  = "ca-next-key.pem"
	PreviousCAFile = "ca-previous.pem"
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
	dir  string
	opts Options

	mu    sync.RWMutex
	ca    *x509.Certificate
	caKey crypto.Signer
	// next is a staged CA, previous the CAs it replaced; both trusted for
	// client certificates.
	next     *x509.Certificate
	previous []*x509.Certificate
	server   tls.Certificate
	clients  *x509.CertPool
}

// Options controls LoadOrCreate.
type Options struct {
	// Names are the DNS names and IP addresses the server certificate must
	// cover, besides localhost, 127.0.0.1, ::1 and the host name.
	Names []string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// DeviceValidity is how long device certificates are valid; default
	// DeviceValidity (tests issue short-lived ones).
	DeviceValidity time.Duration
}

// LoadOrCreate loads the CA from dir, creating it on first use, and makes
// sure the server certificate exists, covers every name and is not close
// to expiry (re-issuing it otherwise).
func LoadOrCreate(dir string, opts Options) (*Authority, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DeviceValidity <= 0 {
		opts.DeviceValidity = DeviceValidity
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create data directory: %w", err)
	}
	if _, _, err := loadPair(filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile)); errors.Is(err, os.ErrNotExist) {
		if _, _, err := createCA(filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile), "Deskside relay CA", opts.Now()); err != nil {
			return nil, err
		}
	}
	a := &Authority{dir: dir, opts: opts}
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// Reload reads the CA files again (after `deskside-relay ca rotate`) and
// re-issues the server certificate when it does not cover every name, is
// within serverRenewBefore of expiry or is not signed by the active CA. On
// an error the authority keeps what it had.
func (a *Authority) Reload() error {
	dir, now := a.dir, a.opts.Now()
	ca, caKey, err := loadPair(filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile))
	if err != nil {
		return err
	}
	var next *x509.Certificate
	switch c, err := pemfile.ReadCertificate(filepath.Join(dir, NextCAFile)); {
	case err == nil:
		next = c
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	previous, err := readBundle(filepath.Join(dir, PreviousCAFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	names := serverNames(a.opts.Names)
	leaf, key, err := loadPair(filepath.Join(dir, serverFile), filepath.Join(dir, serverKeyFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err != nil || !covers(leaf, names) || now.Add(serverRenewBefore).After(leaf.NotAfter) ||
		leaf.CheckSignatureFrom(ca) != nil {
		leaf, key, err = createServer(dir, ca, caKey, names, now)
		if err != nil {
			return err
		}
	}
	clients := x509.NewCertPool()
	clients.AddCert(ca)
	if next != nil {
		clients.AddCert(next)
	}
	for _, c := range previous {
		clients.AddCert(c)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ca, a.caKey, a.next, a.previous, a.clients = ca, caKey, next, previous, clients
	a.server = tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.Raw}, PrivateKey: key, Leaf: leaf}
	return nil
}

// serverRenewBefore is how long before expiry the server certificate is
// re-issued (at start or Reload).
const serverRenewBefore = 30 * 24 * time.Hour

// CA returns the active CA certificate.
func (a *Authority) CA() *x509.Certificate {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.ca
}

// Trusted returns the CAs agents are to pin: the active one first, then a
// staged next one.
func (a *Authority) Trusted() []*x509.Certificate {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.next != nil {
		return []*x509.Certificate{a.ca, a.next}
	}
	return []*x509.Certificate{a.ca}
}

// ServerCertificate returns the serving certificate and chain.
func (a *Authority) ServerCertificate() tls.Certificate {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.server
}

// CAPath is the PEM file agents and the CLI can be pointed at.
func (a *Authority) CAPath() string { return filepath.Join(a.dir, CAFile) }

// Pin returns the CA pin carried by enrollment tokens (wire.CAPin).
func (a *Authority) Pin() string { return wire.CAPin(a.CA().Raw) }

// ServerTLSConfig returns the relay's TLS configuration: TLS 1.3 only,
// client certificates verified against the trusted CAs when given (Enroll
// is the one call made without one; every other agent call checks for
// it). The server certificate and the client CAs are the authority's at
// each handshake (Reload); a caller may change the other fields, such as
// ClientAuth, before use.
func (a *Authority) ServerTLSConfig() *tls.Config {
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{a.ServerCertificate()},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		NextProtos:   []string{"h2"},
	}
	a.mu.RLock()
	cfg.ClientCAs = a.clients
	a.mu.RUnlock()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := cfg.Clone()
		c.GetConfigForClient = nil
		c.Certificates = []tls.Certificate{a.ServerCertificate()}
		if c.ClientAuth != tls.NoClientCert {
			a.mu.RLock()
			c.ClientCAs = a.clients
			a.mu.RUnlock()
		}
		return c, nil
	}
	return cfg
}

// SignDevice verifies csr and issues a client certificate for deviceID,
// signed by the active CA.
func (a *Authority) SignDevice(csrDER []byte, deviceID string, now time.Time) (*x509.Certificate, error) {
	csr, err := ParseCSR(csrDER)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: deviceID, Organization: []string{"Deskside device"}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(a.opts.DeviceValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	a.mu.RLock()
	ca, caKey := a.ca, a.caKey
	a.mu.RUnlock()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, csr.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("pki: sign device certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// ParseCSR parses csrDER, checks its signature (proof of possession) and
// that its key type is accepted.
func ParseCSR(csrDER []byte) (*x509.CertificateRequest, error) {
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
	return csr, nil
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

func createCA(certPath, keyPath, name string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Deskside"}},
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
	if err := writePair(certPath, keyPath, der, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func createServer(dir string, ca *x509.Certificate, caKey crypto.Signer, names []string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
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
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create server certificate: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writePair(filepath.Join(dir, serverFile), filepath.Join(dir, serverKeyFile), der, key); err != nil {
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
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("pki: %s is not the key of %s: restore both from a backup, or run `deskside-relay ca rotate` again if a rotation was interrupted", keyPath, certPath)
	}
	return cert, signer, nil
}

// readBundle reads every certificate of a PEM file.
func readBundle(path string) ([]*x509.Certificate, error) {
	out, err := pemfile.ReadCertificates(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, os.ErrPermission) {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return out, err
}
