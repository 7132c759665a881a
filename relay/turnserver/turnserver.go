// Package turnserver is the relay's built-in TURN server (pion/turn) for
// remote-desktop media that cannot flow peer to peer. It listens on UDP and
// TCP and accepts only short-lived, per-session credentials in the TURN
// REST format ("expiry:session" and an HMAC of it), so an unauthenticated
// or expired allocation is refused. The same credentials work with an
// external TURN server such as coturn configured with
// `use-auth-secret` and the same secret.
//
// Allocations reach only what a session needs (policy.go): permissions
// for loopback, link-local, private, multicast and other special ranges
// and for the relay's own addresses are refused unless an operator allowed
// a range (Config.Allow); the relayed address itself passes only between
// allocations of one session. TCP relaying (RFC 6062) is refused
// (screen.go). EndSession ends a session's allocations and credentials at
// once.
//
// Relaying costs are kept per datagram: the UDP port is served by one
// socket per CPU (SO_REUSEPORT, Linux), each with a large receive buffer,
// read in batches (recvmmsg) and written in batches (sendmmsg, with runs of
// datagrams for one client as one UDP GSO message where the kernel has it;
// sender_linux.go); a datagram from one of the server's allocations to
// another (both peers of a session on this relay) is handed over
// in-process instead of through the kernel, and framed as ChannelData for
// the receiving client at once when that client bound a channel to the
// sender (relay.go). Close releases every socket, including allocations'
// and TCP connections.
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
	"net/netip"
	"runtime"
	"strconv"
	"sync/atomic"
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

	// UDPSockets is how many UDP sockets share the listening port
	// (SO_REUSEPORT, Linux only), each read by its own goroutine; 0 means
	// one per CPU the process may use (GOMAXPROCS).
	UDPSockets int
	// SocketBuffer is the receive and send buffer of each listening UDP
	// socket in bytes (as reported by SO_RCVBUF); 0 means
	// DefaultSocketBuffer, negative the system default. Past
	// net.core.rmem_max it needs CAP_NET_ADMIN, else it is capped there.
	SocketBuffer int
	// SendBatch is how many datagrams to clients one sendmmsg on a
	// listening socket sends at most (Linux only; see sender_linux.go); 0
	// means DefaultSendBatch, negative one sendto a datagram.
	SendBatch int
	// SendDelay is how long, on a busy listening socket (over 2,000
	// datagrams a second), a datagram to a client may wait for others to
	// join its batch, which a goroutine of the socket's then sends (0:
	// DefaultSendDelay). On a quiet socket, and on every socket when
	// negative, there is no wait: a writer that finds no send under way
	// sends what is queued itself, and batches form only from what is
	// written during a send.
	SendDelay time.Duration
	// NoHold sends what a listening socket's reader writes as it writes
	// it (as above) instead of holding it until the reader has handled
	// the whole batch it read, then sending it in one sendmmsg (Linux
	// only; see sender_linux.go). For measurements.
	NoHold bool
	// NoForward hands all ChannelData from UDP clients to pion/turn
	// instead of relaying what it can itself (relay.go, forward). For
	// measurements.
	NoForward bool
	// NoGSO sends every datagram to clients as a message of its own
	// instead of a run of them for one client as one UDP GSO message where
	// the kernel offers it.
	NoGSO bool
	// NoHairpin relays datagrams from one of this server's allocations to
	// another through the kernel, as between any two hosts, instead of
	// in-process (see relay.go). For measurements and debugging.
	NoHairpin bool
	// Allow lists peer ranges allocations may reach although they are
	// refused by default (loopback, link-local, private, the relay's own
	// addresses…; see policy.go): a LAN deployment whose agents and
	// browsers are on 10.0.0.0/8 allows that range. Allowing a range that
	// holds the relay's own addresses lets clients reach the relay's own
	// services on them.
	Allow []netip.Prefix
}

// DefaultSocketBuffer is each listening socket's default buffer: some 3,500
// datagrams of 1 kB (about 14 ms at 1,000 relayed 1 Mbit/s sessions a
// socket), so that a reading goroutine descheduled for a moment drops
// nothing; the kernel's default (208 KiB) lost 0.4 % at 200 sessions under
// load. Memory is taken only while datagrams wait.
const DefaultSocketBuffer = 8 << 20

// Defaults of Config.SendBatch and Config.SendDelay.
const (
	DefaultSendBatch = 64
	DefaultSendDelay = 100 * time.Microsecond
)

// sendConfig is how listening sockets send (Config.SendBatch, SendDelay,
// NoGSO); batch ≤ 0: one sendto a datagram.
type sendConfig struct {
	batch int
	delay time.Duration
	gso   bool
	cork  *sendCork // shared by the sockets; nil: sends are not held
}

// Server is a running TURN server.
type Server struct {
	srv     *turn.Server
	secret  []byte
	udp     []*net.UDPConn
	lconns  []net.PacketConn // udp as served (batching reads)
	tcp     net.Listener
	ip      net.IP
	hub     *relayHub
	tracker *tracker
	policy  *peerPolicy
	// maxTTL is the longest lifetime of credentials issued here: an ended
	// session is remembered that long.
	maxTTL atomic.Int64
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
	if cfg.UDPSockets <= 0 {
		cfg.UDPSockets = runtime.GOMAXPROCS(0)
	}
	if cfg.SocketBuffer == 0 {
		cfg.SocketBuffer = DefaultSocketBuffer
	}
	sc := sendConfig{batch: cfg.SendBatch, delay: cfg.SendDelay, gso: !cfg.NoGSO}
	if !cfg.NoHold {
		sc.cork = &sendCork{}
	}
	if sc.batch == 0 {
		sc.batch = DefaultSendBatch
	}
	switch {
	case sc.delay == 0:
		sc.delay = DefaultSendDelay
	case sc.delay < 0:
		sc.delay = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	udp, tcp, err := listen(cfg.Listen, cfg.UDPSockets)
	if err != nil {
		return nil, err
	}
	tr := newTracker()
	hub := newRelayHub(cfg.PublicIP, cfg.NoHairpin)
	policy := newPeerPolicy(cfg.PublicIP, cfg.Allow)
	hub.publicOpen = policy.publicAllowed()
	gen := func() turn.RelayAddressGenerator {
		return newRelayGenerator(cfg.PublicIP, cfg.RelayPortMin, cfg.RelayPortMax, hub, tr)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	auth := authHandler(turn.LongTermTURNRESTAuthHandler(string(cfg.Secret), lf.NewLogger("turn")), hub)
	scr := &screener{auth: auth}
	var (
		pcs    []turn.PacketConnConfig
		lconns []net.PacketConn
	)
	for _, c := range udp {
		setSocketBuffers(c, cfg.SocketBuffer)
		lc := newListenConn(c, tr, sc)
		tr.add(lc)
		lconns = append(lconns, lc)
		spc := &screenedPacketConn{PacketConn: lc, s: scr}
		if server, ok := udpAddrPort(lc.LocalAddr()); ok && !cfg.NoForward {
			spc.hub, spc.server = hub, server
		}
		pcs = append(pcs, turn.PacketConnConfig{PacketConn: spc,
			RelayAddressGenerator: gen(), PermissionHandler: policy.permit})
	}
	for _, lc := range lconns {
		hub.out = append(hub.out, lc.(channelDataWriter))
	}
	tl := &trackedListener{Listener: tcp, tracker: tr, screen: scr}
	tr.add(tl)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:             Realm,
		AuthHandler:       auth,
		PacketConnConfigs: pcs,
		ListenerConfigs:   []turn.ListenerConfig{{Listener: tl, RelayAddressGenerator: gen(), PermissionHandler: policy.permit}},
		LoggerFactory:     lf,
		EventHandler:      turn.EventHandler{OnChannelCreated: hub.channelCreated, OnChannelDeleted: hub.channelDeleted},
	})
	if err != nil {
		tr.closeAll()
		return nil, fmt.Errorf("turnserver: %w", err)
	}
	if rcv, _ := socketBuffers(udp[0]); rcv != 0 {
		cfg.Logger.Debug("turn server listening", "port", udp[0].LocalAddr().(*net.UDPAddr).Port,
			"udp_sockets", len(udp), "receive_buffer", rcv, "hairpin", !cfg.NoHairpin)
	}
	return &Server{srv: srv, secret: cfg.Secret, udp: udp, lconns: lconns, tcp: tcp, ip: cfg.PublicIP, hub: hub, tracker: tr, policy: policy}, nil
}

// authHandler refuses the credentials of ended sessions (the user id of
// TURN REST credentials is the session).
func authHandler(inner turn.AuthHandler, hub *relayHub) turn.AuthHandler {
	return func(ra *turn.RequestAttributes) (string, []byte, bool) {
		user, key, ok := inner(ra)
		if !ok || hub.isRevoked(user) {
			return "", nil, false
		}
		return user, key, true
	}
}

// listen opens n UDP sockets (see listenUDPGroup) and a TCP listener on the
// same port. With port 0 the port is one free for UDP without
// SO_REUSEPORT (so that no other process's SO_REUSEPORT group is joined);
// if it is taken for TCP, or meanwhile for UDP, another is tried. On a
// fixed port, another relay's SO_REUSEPORT group on it would be joined, but
// its TCP listener (no SO_REUSEPORT) then fails this one's start.
func listen(addr string, n int) ([]*net.UDPConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("turnserver: listen %s: %w", addr, err)
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	var lastErr error
	for range tries {
		udpAddr := addr
		if port == "0" && n > 1 {
			probe, err := net.ListenPacket("udp4", addr)
			if err != nil {
				return nil, nil, fmt.Errorf("turnserver: listen udp %s: %w", addr, err)
			}
			udpAddr = net.JoinHostPort(host, strconv.Itoa(probe.LocalAddr().(*net.UDPAddr).Port))
			probe.Close()
		}
		udp, err := listenUDPGroup(udpAddr, n)
		if err != nil {
			lastErr = fmt.Errorf("turnserver: listen udp %s: %w", udpAddr, err)
			if port == "0" {
				continue
			}
			return nil, nil, lastErr
		}
		tcpAddr := net.JoinHostPort(host, strconv.Itoa(udp[0].LocalAddr().(*net.UDPAddr).Port))
		tcp, err := net.Listen("tcp4", tcpAddr)
		if err == nil {
			return udp, tcp, nil
		}
		for _, c := range udp {
			c.Close()
		}
		lastErr = fmt.Errorf("turnserver: listen tcp %s: %w", tcpAddr, err)
	}
	return nil, nil, lastErr
}

// Port is the UDP/TCP port.
func (s *Server) Port() int { return s.udp[0].LocalAddr().(*net.UDPAddr).Port }

// URLs are the ICE server URLs of this server.
func (s *Server) URLs() []string {
	hp := net.JoinHostPort(s.ip.String(), strconv.Itoa(s.Port()))
	return []string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}
}

// Credentials issues credentials for session valid for ttl (or until
// EndSession). session must not hold a colon.
func (s *Server) Credentials(session string, ttl time.Duration) Credentials {
	for {
		old := s.maxTTL.Load()
		if int64(ttl) <= old || s.maxTTL.CompareAndSwap(old, int64(ttl)) {
			break
		}
	}
	return Issue(s.secret, s.URLs(), session, ttl)
}

// EndSession ends session: its credentials are refused from now on and its
// allocations are closed. It returns how many allocations it closed.
func (s *Server) EndSession(session string) int {
	hold := max(time.Duration(s.maxTTL.Load()), time.Hour) + time.Minute
	return s.hub.revoke(session, hold)
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

// Stats are counters of a running server.
type Stats struct {
	// Allocations is the number of live allocations.
	Allocations int
	// UDPSockets is the number of UDP sockets on the listening port.
	UDPSockets int
	// Hairpinned counts datagrams relayed in-process from one allocation to
	// another.
	Hairpinned int64
	// RelayDropped counts datagrams for an allocation (hairpinned, or read
	// from its relay socket once it takes hairpinned ones) dropped because
	// its queue was full.
	RelayDropped int64
	// Refused counts datagrams to or from the relayed address that were
	// not between allocations of one session.
	Refused int64
	// Channeled counts hairpinned datagrams sent to the receiving client
	// as ChannelData by the sending allocation (part of Hairpinned).
	Channeled int64
	// Forwarded counts ChannelData from UDP clients relayed to the
	// channel's peer by the server itself, not handed to pion/turn.
	Forwarded int64
	// Sent counts datagrams to clients sent in batches, SendBatches the
	// sendmmsg batches, GSOMessages the messages of a batch that held a run
	// of datagrams for one client (UDP GSO), and SendErrors the datagrams
	// the kernel refused (Linux; zero elsewhere).
	Sent, SendBatches, GSOMessages, SendErrors int64
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Allocations:  s.srv.AllocationCount(),
		UDPSockets:   len(s.udp),
		Hairpinned:   s.hub.hairpinned.Load(),
		RelayDropped: s.hub.dropped.Load(),
		Refused:      s.hub.refused.Load(),
		Channeled:    s.hub.channeled.Load(),
		Forwarded:    s.hub.forwarded.Load(),
	}
	st.Sent, st.SendBatches, st.GSOMessages, st.SendErrors = sendStats(s.lconns)
	return st
}

// Close stops the server: it closes the listening sockets, every
// allocation's relay socket and every TCP connection, and returns once no
// goroutine of the server reads from them.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.tracker.closeAll()
	return err
}
