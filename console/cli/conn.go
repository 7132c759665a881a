package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

// defaultPort is the relay's default gRPC port.
const defaultPort = "7443"

// normalizeRelay checks a relay address and adds the default port when
// there is none.
func normalizeRelay(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", errors.New("relay address is empty: pass --relay HOST:PORT")
	}
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr, nil
	}
	withPort := net.JoinHostPort(strings.Trim(addr, "[]"), defaultPort)
	if h, _, err := net.SplitHostPort(withPort); err == nil && h != "" && !strings.ContainsAny(h, "/ ") {
		return withPort, nil
	}
	return "", fmt.Errorf("relay address %q: expected HOST:PORT, e.g. relay.example.com:%s", clean(addr), defaultPort)
}

// trust is how the relay's certificate is verified.
type trust struct {
	// caPEM, when set, holds the only trusted roots (standard verification
	// including the host name).
	caPEM []byte
	// caFile is where caPEM came from (--ca), for messages; empty when it
	// came from the session file.
	caFile string
	// pin, when set, is a CA pin: some certificate of the presented chain
	// must match it and the leaf must verify for the host under it.
	pin string
	// With neither, the system roots are used.
}

// readCA reads a PEM file of CA certificates and returns them re-encoded,
// so nothing but certificates (a stray private key, say) is ever stored.
func readCA(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --ca: %w", err)
	}
	out, err := certsPEM(b)
	if err != nil {
		return nil, fmt.Errorf("--ca %s: %w", path, err)
	}
	return out, nil
}

// certsPEM parses the CERTIFICATE blocks of b and returns them re-encoded.
func certsPEM(b []byte) ([]byte, error) {
	var out []byte
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return nil, fmt.Errorf("unreadable certificate: %w", err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes})...)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate in it (expected the relay's <data-dir>/ca.pem)")
	}
	return out, nil
}

// checkPin validates the form of a --ca-pin value.
func checkPin(pin string) (string, error) {
	pin, err := wire.ParsePin(pin)
	if err != nil {
		return "", errors.New("--ca-pin must be the base64url SHA-256 of the relay's CA certificate (43 characters; " +
			"it is also the last dot-separated part of an enrollment token)")
	}
	return pin, nil
}

// handshakes records the outcome of TLS handshakes so an RPC failure can
// be explained precisely (a certificate problem versus no relay at all).
type handshakes struct {
	mu  sync.Mutex
	err error
	ok  bool
}

func (h *handshakes) record(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.err = err
	} else {
		h.ok, h.err = true, nil
	}
}

func (h *handshakes) failure() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

func (h *handshakes) connected() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ok
}

// recordingCreds are TLS transport credentials that record each
// handshake's outcome.
type recordingCreds struct {
	credentials.TransportCredentials
	hs *handshakes
}

var _ credentials.TransportCredentials = recordingCreds{}

func (r recordingCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, info, err := r.TransportCredentials.ClientHandshake(ctx, authority, raw)
	r.hs.record(err)
	return c, info, err
}

func (r recordingCreds) Clone() credentials.TransportCredentials {
	return recordingCreds{TransportCredentials: r.TransportCredentials.Clone(), hs: r.hs}
}

// bearer sends the session token in the "authorization" metadata. It
// never prints the token.
type bearer string

var _ credentials.PerRPCCredentials = bearer("")

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }
func (bearer) String() string                 { return "[session token]" }
func (bearer) GoString() string               { return "[session token]" }

// conn is a connection to a relay's ConsoleService.
type conn struct {
	relay  string
	host   string
	trust  trust
	cc     *grpc.ClientConn
	client desksidev1.ConsoleServiceClient
	hs     *handshakes
	// pinned is the CA certificate that matched trust.pin.
	pinned atomic.Pointer[x509.Certificate]
}

// dial prepares a connection (gRPC connects on the first call). token may
// be empty (login).
func dial(relay string, t trust, token, version string) (*conn, error) {
	host, _, err := net.SplitHostPort(relay)
	if err != nil {
		return nil, fmt.Errorf("relay address %q: %w", clean(relay), err)
	}
	c := &conn{relay: relay, host: host, trust: t, hs: &handshakes{}}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: host}
	switch {
	case len(t.caPEM) > 0:
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(t.caPEM) {
			return nil, errors.New("the stored relay CA is unreadable: sign in again with `deskside login --ca <data-dir>/ca.pem`")
		}
		cfg.RootCAs = pool
	case t.pin != "":
		// Verification happens in VerifyConnection, against the pinned CA.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			ca, err := verifyPinned(cs, t.pin, host)
			if err == nil {
				c.pinned.Store(ca)
			}
			return err
		}
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(recordingCreds{TransportCredentials: credentials.NewTLS(cfg), hs: c.hs}),
		grpc.WithUserAgent("deskside-cli/" + version),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(wire.MaxMessageBytes), grpc.MaxCallSendMsgSize(wire.MaxMessageBytes)),
	}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	c.cc, err = grpc.NewClient("passthrough:///"+relay, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to relay %s: %w", clean(relay), err)
	}
	c.client = desksidev1.NewConsoleServiceClient(c.cc)
	return c, nil
}

// Close closes the connection.
func (c *conn) Close() error { return c.cc.Close() }

// pinnedPEM returns the CA that matched the pin, PEM encoded, once a
// handshake has succeeded.
func (c *conn) pinnedPEM() []byte {
	ca := c.pinned.Load()
	if ca == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
}

// verifyPinned checks that the presented chain contains a certificate
// matching pin and that the leaf verifies for host under it, the same
// check an agent makes at enrollment.
func verifyPinned(cs tls.ConnectionState, pin, host string) (*x509.Certificate, error) {
	ca, err := wire.VerifyPinned(cs.PeerCertificates, pin, host)
	if errors.Is(err, wire.ErrPinMismatch) {
		return nil, ErrPinMismatch
	}
	return ca, err
}

// connect opens an authenticated connection from the session file.
func (e *runEnv) connect() (*conn, *config, error) {
	cfg, _, err := e.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	if cfg.Token == "" || cfg.Relay == "" {
		return nil, nil, ErrNotSignedIn
	}
	if !cfg.ExpiresAt.IsZero() && !e.now().Before(cfg.ExpiresAt) {
		return nil, nil, fmt.Errorf("%w (it expired %s)", ErrSessionExpired, fmtTime(cfg.ExpiresAt))
	}
	c, err := dial(cfg.Relay, trust{caPEM: []byte(cfg.CAPEM)}, cfg.Token, e.version)
	if err != nil {
		return nil, nil, err
	}
	return c, cfg, nil
}

// unary connects to the relay, makes one call within the RPC timeout and
// explains its error: what most commands do.
func unary[Resp any](e *runEnv, call func(context.Context, desksidev1.ConsoleServiceClient) (Resp, error)) (Resp, error) {
	return unaryOn(e, desksidev1.NewConsoleServiceClient, call)
}

// unaryOn is unary for any of the relay's services: newClient makes that
// service's client on the connection.
func unaryOn[C, Resp any](e *runEnv, newClient func(grpc.ClientConnInterface) C, call func(context.Context, C) (Resp, error)) (Resp, error) {
	var zero Resp
	c, _, err := e.connect()
	if err != nil {
		return zero, err
	}
	defer c.Close()
	ctx, cancel := e.rpcContext()
	defer cancel()
	resp, err := call(ctx, newClient(c.cc))
	if err != nil {
		return zero, c.explain(err)
	}
	return resp, nil
}
