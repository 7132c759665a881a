// Package turnserver is the relay's built-in TURN server (pion/turn) for
// remote-desktop media that cannot flow peer to peer. It listens on UDP and
// TCP and accepts only short-lived, per-session credentials in the TURN
// REST format ("expiry:session" and an HMAC of it), so an unauthenticated
// or expired allocation is refused. The same credentials work with an
// external TURN server such as coturn configured with
// `use-auth-secret` and the same secret.
package turnserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
)

// Realm is the TURN realm.
const Realm = "deskside"

// Config configures the server.
type Config struct {
	// Listen is the UDP and TCP address, e.g. ":3478" (127.0.0.1:0 in tests:
	// UDP and TCP then get the same port when possible).
	Listen string
	// PublicIP is the address relayed candidates advertise (the relay's
	// address as agents and browsers reach it).
	PublicIP net.IP
	// Secret signs credentials; random when empty.
	Secret []byte
	// RelayPortMin and RelayPortMax bound the relayed ports (0: any).
	RelayPortMin, RelayPortMax uint16
	Logger                     *slog.Logger
}

// Server is a running TURN server.
type Server struct {
	srv    *turn.Server
	secret []byte
	udp    net.PacketConn
	tcp    net.Listener
	ip     net.IP
}

// Credentials are ICE server credentials for one session.
type Credentials struct {
	URLs     []string
	Username string
	Password string
	Expires  time.Time
}

// Start listens and serves.
func Start(cfg Config) (*Server, error) {
	if cfg.PublicIP == nil {
		return nil, errors.New("turnserver: PublicIP is required (the address peers reach the relay at)")
	}
	if len(cfg.Secret) == 0 {
		cfg.Secret = make([]byte, 32)
		rand.Read(cfg.Secret)
	}
	udp, tcp, err := listen(cfg.Listen)
	if err != nil {
		return nil, err
	}
	gen := func() turn.RelayAddressGenerator {
		if cfg.RelayPortMin != 0 {
			return &turn.RelayAddressGeneratorPortRange{RelayAddress: cfg.PublicIP, Address: "0.0.0.0", MinPort: cfg.RelayPortMin, MaxPort: cfg.RelayPortMax}
		}
		return &turn.RelayAddressGeneratorStatic{RelayAddress: cfg.PublicIP, Address: "0.0.0.0"}
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:             Realm,
		AuthHandler:       turn.LongTermTURNRESTAuthHandler(string(cfg.Secret), lf.NewLogger("turn")),
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: udp, RelayAddressGenerator: gen()}},
		ListenerConfigs:   []turn.ListenerConfig{{Listener: tcp, RelayAddressGenerator: gen()}},
		LoggerFactory:     lf,
	})
	if err != nil {
		udp.Close()
		tcp.Close()
		return nil, fmt.Errorf("turnserver: %w", err)
	}
	return &Server{srv: srv, secret: cfg.Secret, udp: udp, tcp: tcp, ip: cfg.PublicIP}, nil
}

// listen opens UDP and TCP on the same port. With port 0 the UDP port is
// picked first; if that port is taken for TCP, another is tried.
func listen(addr string) (net.PacketConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	tries := 1
	if port == "0" {
		tries = 20
	}
	var lastErr error
	for range tries {
		udp, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("turnserver: listen udp %s: %w", addr, err)
		}
		tcpAddr := net.JoinHostPort(hostOf(addr), strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port))
		tcp, err := net.Listen("tcp4", tcpAddr)
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		lastErr = fmt.Errorf("turnserver: listen tcp %s: %w", tcpAddr, err)
	}
	return nil, nil, lastErr
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// Port is the UDP/TCP port.
func (s *Server) Port() int { return s.udp.LocalAddr().(*net.UDPAddr).Port }

// URLs are the ICE server URLs of this server.
func (s *Server) URLs() []string {
	hp := net.JoinHostPort(s.ip.String(), strconv.Itoa(s.Port()))
	return []string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}
}

// Credentials issues credentials for session valid for ttl.
func (s *Server) Credentials(session string, ttl time.Duration) Credentials {
	return Issue(s.secret, s.URLs(), session, ttl)
}

// Issue makes TURN REST credentials with a shared secret (for this server
// or an external one).
func Issue(secret []byte, urls []string, session string, ttl time.Duration) Credentials {
	exp := time.Now().Add(ttl)
	user := strconv.FormatInt(exp.Unix(), 10) + ":" + session
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(user))
	return Credentials{URLs: urls, Username: user, Password: base64.StdEncoding.EncodeToString(mac.Sum(nil)), Expires: exp}
}

// Close stops the server.
func (s *Server) Close() error {
	return s.srv.Close()
}
