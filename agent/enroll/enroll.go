// Package enroll gives an agent its identity: it generates a key locally,
// sends a CSR with a one-time enrollment token, receives a device
// certificate, and pins the relay CA named by the token. The resulting
// State (key, certificate, CA, relay address) lives in the agent's state
// directory and yields the mutual-TLS configuration for every later call.
//
// The identity lasts: the device certificate is renewed over the agent's
// stream at two thirds of its lifetime (RenewalDue, NewCSR, Renewed), and
// the pinned CAs follow the relay's CA rotation (SetTrusted); see
// docs/adr/0019.
package enroll

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/deskside/deskside/agent/orgtrust"
	"github.com/deskside/deskside/internal/atomicfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

// File names in the state directory.
const (
	keyFile  = "device-key.pem"
	certFile = "device.pem"
	// A renewed key and certificate are written here first, then renamed
	// over keyFile and certFile; Load finishes an interrupted renewal.
	nextKeyFile  = "device-key.next.pem"
	nextCertFile = "device.next.pem"
	caFile       = "ca.pem"
	stateFile    = "agent.json"
)

var (
	// ErrNotEnrolled is returned by Load when the state directory holds no identity.
	ErrNotEnrolled = errors.New("agent is not enrolled: run `deskside-agent enroll --relay HOST:PORT --token TOKEN`")
	// ErrAlreadyEnrolled is returned by Enroll when an identity exists and Force is off.
	ErrAlreadyEnrolled = errors.New("agent is already enrolled: pass --force to replace its identity")
	// ErrPinMismatch is returned when the relay's CA is not the one the token names.
	ErrPinMismatch = errors.New("the relay's certificate authority does not match the enrollment token's pin: check the relay address, or that the token came from this relay")
)

// State is an enrolled agent's identity.
type State struct {
	Dir      string          `json:"-"`
	Relay    string          `json:"relay"`
	DeviceID string          `json:"device_id"`
	Enrolled time.Time       `json:"enrolled"`
	Cert     tls.Certificate `json:"-"`
	// CAs are the pinned relay CAs (ca.pem, one or more certificates).
	CAs []*x509.Certificate `json:"-"`
	// OrgFingerprint is the organisation key Enroll pinned from the token
	// ("" when the token carried none); org.pin is what the agent uses.
	OrgFingerprint string `json:"-"`
}

// Options for Enroll.
type Options struct {
	Relay    string // host:port
	Token    string
	StateDir string
	Hostname string
	Version  string
	Force    bool
	// MachineID identifies this machine to the relay, so that enrolling it
	// again replaces its device instead of adding one; default MachineID()
	// (none where the platform has no machine id). Tests that enroll
	// several identities from one machine set distinct values.
	MachineID string
	// Timeout bounds the whole exchange; default 30 s.
	Timeout time.Duration
	// Dialer, when set, opens the TCP connection to the relay (as
	// link.Config.Dialer); default the standard dialer.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
}

// Enroll performs enrollment and writes the identity to opts.StateDir.
func Enroll(ctx context.Context, opts Options) (*State, error) {
	if _, err := os.Stat(filepath.Join(opts.StateDir, stateFile)); err == nil && !opts.Force {
		return nil, ErrAlreadyEnrolled
	}
	host, _, err := net.SplitHostPort(opts.Relay)
	if err != nil {
		return nil, fmt.Errorf("relay address %q: %w (expected HOST:PORT)", opts.Relay, err)
	}
	tok, err := wire.ParseToken(opts.Token)
	if err != nil {
		return nil, err
	}
	// A token's organisation key never replaces a pin (the token could
	// come from another organisation, or a compromised relay).
	pinned := ""
	if tok.OrgFingerprint != "" {
		cur, source, err := orgtrust.ReadPin(opts.StateDir)
		if err != nil {
			return nil, err
		}
		if cur != "" && cur != tok.OrgFingerprint {
			return nil, fmt.Errorf("this machine pins organisation key %s (pinned by: %s) and the token carries %s: use a token of this organisation, or, if the key really changed, pin it first as root: deskside-agent org pin --replace %s",
				cur, source, tok.OrgFingerprint, tok.OrgFingerprint)
		}
		pinned = cur
	}
	machineID := opts.MachineID
	if machineID == "" {
		machineID, _ = MachineID() // none: the relay adds a device
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: opts.Hostname},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("create CSR: %w", err)
	}

	tlsCfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Verification happens in VerifyConnection against the pinned CA.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs, tok.Pin, host)
		},
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dialOpts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg))}
	if opts.Dialer != nil {
		dialOpts = append(dialOpts, grpc.WithContextDialer(opts.Dialer))
	}
	cc, err := grpc.NewClient("passthrough:///"+opts.Relay, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("dial relay: %w", err)
	}
	defer cc.Close()
	resp, err := desksidev1.NewAgentServiceClient(cc).Enroll(ctx, &desksidev1.EnrollRequest{
		Token: opts.Token, CsrDer: csr, Hostname: opts.Hostname, AgentVersion: opts.Version,
		ProtocolVersion: wire.ProtocolVersion, MachineId: machineID,
	}, grpc.WaitForReady(false))
	if err != nil {
		msg := status.Convert(err).Message()
		if strings.Contains(msg, ErrPinMismatch.Error()) {
			return nil, ErrPinMismatch
		}
		if status.Code(err) == codes.Unavailable {
			return nil, fmt.Errorf("cannot reach the relay at %s: %s", opts.Relay, msg)
		}
		return nil, fmt.Errorf("relay refused enrollment: %s", msg)
	}
	if wire.CAPin(resp.GetCaCertificateDer()) != tok.Pin {
		return nil, ErrPinMismatch
	}
	ca, err := x509.ParseCertificate(resp.GetCaCertificateDer())
	if err != nil {
		return nil, fmt.Errorf("relay sent an unreadable CA certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(resp.GetCertificateDer())
	if err != nil {
		return nil, fmt.Errorf("relay sent an unreadable device certificate: %w", err)
	}
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("device certificate is not signed by the pinned CA: %w", err)
	}
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		return nil, errors.New("relay issued a certificate for a different key")
	}
	st := &State{
		Dir: opts.StateDir, Relay: opts.Relay, DeviceID: resp.GetDeviceId(), Enrolled: time.Now().UTC(),
		Cert: tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, CAs: []*x509.Certificate{ca},
	}
	if err := st.save(key); err != nil {
		return nil, err
	}
	if tok.OrgFingerprint != "" {
		if pinned == "" {
			if err := orgtrust.PinFrom(opts.StateDir, tok.OrgFingerprint, orgtrust.SourceToken); err != nil {
				return nil, fmt.Errorf("enrolled, but the organisation key from the token was not pinned: %w; pin it as root: deskside-agent org pin %s", err, tok.OrgFingerprint)
			}
		}
		st.OrgFingerprint = tok.OrgFingerprint
	}
	return st, nil
}

// verifyPinned checks that the server chain contains the pinned CA and that
// the leaf is valid for host under it.
func verifyPinned(cs tls.ConnectionState, pin, host string) error {
	_, err := wire.VerifyPinned(cs.PeerCertificates, pin, host)
	if errors.Is(err, wire.ErrPinMismatch) {
		return ErrPinMismatch
	}
	return err
}

func (st *State) save(key crypto.Signer) error {
	if err := os.MkdirAll(st.Dir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(st.Dir, keyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(st.Dir, certFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: st.Cert.Certificate[0]}), 0o644); err != nil {
		return err
	}
	if err := st.saveCAs(); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(st, "", "  ")
	return atomicfile.WriteFile(filepath.Join(st.Dir, stateFile), append(js, '\n'), 0o600)
}

// Load reads an enrolled identity from dir.
func Load(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotEnrolled
	} else if err != nil {
		return nil, fmt.Errorf("read agent state: %w", err)
	}
	st := &State{Dir: dir}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("agent state %s is corrupt (%v): enroll again with --force", filepath.Join(dir, stateFile), err)
	}
	if fi, err := os.Stat(filepath.Join(dir, keyFile)); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by other users (mode %v): chmod 600 it", filepath.Join(dir, keyFile), fi.Mode().Perm())
	}
	finishRenewal(dir)
	st.Cert, err = tls.LoadX509KeyPair(filepath.Join(dir, certFile), filepath.Join(dir, keyFile))
	if err != nil {
		return nil, fmt.Errorf("load device certificate: %w (enroll again with --force)", err)
	}
	st.CAs, err = readCAs(filepath.Join(dir, caFile))
	if err != nil {
		return nil, err
	}
	return st, nil
}

// TLSConfig is the agent's mutual-TLS 1.3 configuration: the device
// certificate, and only the pinned relay CAs trusted. It is a snapshot:
// after a renewal or a change of CAs, build a new one.
func (st *State) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	for _, ca := range st.CAs {
		pool.AddCert(ca)
	}
	host, _, _ := net.SplitHostPort(st.Relay)
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{st.Cert},
		RootCAs:      pool,
		ServerName:   host,
	}
}
