package turnserver

import (
	"encoding/binary"
	"errors"
	"maps"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"
)

// This file holds the relayed side of allocations: the RelayAddressGenerator
// the server hands to pion/turn, the UDP relay socket it creates (relayConn)
// and the hairpin that relays a datagram from one of this server's
// allocations to another of them without going through the kernel.
//
// A relay-only desktop session has both peers on this server: the agent's
// allocation sends to the browser's relayed address and back. Through the
// kernel that costs, per datagram, a sendto from the sender's relay socket
// (which on loopback or a hairpinning NAT includes the whole receive path),
// a netpoll wake-up and a recvfrom on the receiver's relay socket. The
// hairpin hands the datagram to the receiving relayConn's ReadFrom instead;
// pion/turn's allocation loop still applies the receiving allocation's
// permissions and channel bindings exactly as for a datagram from the
// network, and sees the sender's relayed address (what the kernel would
// show) as the source. A datagram that does not fit the receiver's queue is
// dropped, as a full socket buffer drops it.
//
// Once the receiving allocation's client has bound a channel to the
// sender's relayed address (the usual case: WebRTC clients bind channels),
// the hand-off is cut shorter still: the sending goroutine frames the
// datagram as ChannelData and queues it for the receiving client on a
// listening socket itself, which is what pion/turn's allocation loop would
// do with it (for a datagram from a peer with a channel it checks nothing
// else), without waking that loop. The channels are learnt from pion/turn's
// OnChannelCreated and OnChannelDeleted events (UDP clients only); an
// allocation without such a channel, or with a TCP client, is handed the
// datagram as above.

// hairpinQueue bounds what one relay socket holds of hairpinned datagrams
// (the kernel's default UDP receive buffer holds about as many of 1,000
// bytes).
const hairpinQueue = 256

// hairpinBufSize is the size of pooled hairpin buffers; pion/turn reads
// relayed datagrams into 1,600-byte buffers, so larger ones are rare.
const hairpinBufSize = 2048

var hairpinBufs = sync.Pool{New: func() any { b := make([]byte, hairpinBufSize); return &b }}

// aLongTimeAgo is a read deadline that wakes a blocked ReadFrom at once.
var aLongTimeAgo = time.Unix(1, 0)

// relayHub knows this server's UDP relay sockets by their relayed address
// and by session.
type relayHub struct {
	ip       net.IP // the relayed (public) address all relay sockets advertise
	disabled bool   // no hairpin (Config.NoHairpin)
	// publicOpen lets allocations reach any port of the relayed address,
	// not only other allocations of their session (Config.Allow holds it).
	publicOpen bool
	// ports has the relay socket of each port (a lookup a datagram: one
	// atomic load; 512 KiB, of which only pages of ports in use are
	// touched).
	ports *[1 << 16]atomic.Pointer[relayConn]
	// Hairpinned and dropped count datagrams relayed in-process and those
	// dropped for a full queue (diagnostics, tests).
	hairpinned, dropped atomic.Int64
	// refused counts datagrams to or from the relayed address that were
	// not between allocations of one session.
	refused atomic.Int64
	// channeled counts hairpinned datagrams sent to the receiving client
	// as ChannelData directly (see above).
	channeled atomic.Int64
	// forwarded counts ChannelData from clients relayed without pion/turn
	// (forward).
	forwarded atomic.Int64
	// clients are the allocations whose UDP clients bound channels, by the
	// client's address (forward): a map replaced whole under clientsMu when
	// a client comes or goes (a channel's first bind, an allocation's end),
	// read with one atomic load a datagram.
	clients   atomic.Pointer[map[netip.AddrPort]*relayConn]
	clientsMu sync.Mutex
	// out are the listening sockets, by which ChannelData goes to clients
	// (one chosen by the client's port, so that a client's datagrams keep
	// their order; all share the address and port). Set before serving.
	out []channelDataWriter

	mu       sync.Mutex
	sessions map[string]map[*relayConn]struct{} // live relay sockets by session
	revoked  map[string]time.Time               // ended sessions, until when they are remembered
}

func newRelayHub(ip net.IP, disabled bool) *relayHub {
	return &relayHub{ip: ip, disabled: disabled, ports: new([1 << 16]atomic.Pointer[relayConn]),
		sessions: map[string]map[*relayConn]struct{}{}, revoked: map[string]time.Time{}}
}

// channelDataWriter sends ChannelData (a channel number and a datagram) to
// a client: a listening socket.
type channelDataWriter interface {
	writeChannelData(num uint16, p []byte, to netip.AddrPort) error
}

// putChannelData frames p as ChannelData for num into b, which has room
// for channelDataLen(len(p)) bytes, as pion/turn does (padded to 4 bytes).
func putChannelData(b []byte, num uint16, p []byte) []byte {
	n := channelDataLen(len(p))
	b = b[:n]
	binary.BigEndian.PutUint16(b[0:2], num)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(p)))
	copy(b[4:], p)
	clear(b[4+len(p):])
	return b
}

// channelDataLen is the length of ChannelData holding n bytes.
func channelDataLen(n int) int { return (4 + n + 3) &^ 3 }

// fastChannels are the channels an allocation's UDP client bound: peer
// address to channel number and back. Replaced whole on a change (rare),
// read without a lock.
type fastChannels struct {
	client netip.AddrPort // the allocation's 5-tuple: client, server address, UDP
	server netip.AddrPort
	byPeer map[netip.AddrPort]uint16
	byNum  map[uint16]*net.UDPAddr // each channel's peer, as pion/turn gave it
}

// udpAddrPort converts a UDP address, IPv4-mapped addresses to IPv4.
func udpAddrPort(a net.Addr) (netip.AddrPort, bool) {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ip, ok := netip.AddrFromSlice(ua.IP)
	if !ok || ua.Port <= 0 || ua.Port >= 1<<16 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(ua.Port)), true
}

// channelCreated is pion/turn's OnChannelCreated: the UDP client of the
// allocation at relayAddr bound num to peer.
func (h *relayHub) channelCreated(srcAddr, dstAddr net.Addr, protocol, userID, _ string, relayAddr, peer net.Addr, num uint16) {
	c := h.allocationAt(relayAddr, userID)
	client, ok1 := udpAddrPort(srcAddr)
	pa, ok2 := udpAddrPort(peer)
	server, ok3 := udpAddrPort(dstAddr)
	if _, ok4 := peer.(*net.UDPAddr); c == nil || protocol != "UDP" || !ok1 || !ok2 || !ok3 || !ok4 {
		return
	}
	c.chmu.Lock()
	defer c.chmu.Unlock()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	next := &fastChannels{client: client, server: server, byPeer: map[netip.AddrPort]uint16{pa: num},
		byNum: map[uint16]*net.UDPAddr{num: peer.(*net.UDPAddr)}}
	old := c.chans.Load()
	if old != nil && old.client == client && old.server == server {
		for k, v := range old.byPeer {
			if k != pa && v != num {
				next.byPeer[k] = v
				next.byNum[v] = old.byNum[v]
			}
		}
	}
	c.chans.Store(next)
	if old != nil && old.client != client {
		h.forgetClient(old.client, c)
	}
	h.knowClient(client, c)
}

// client is the allocation of a UDP client that bound a channel.
func (h *relayHub) client(ap netip.AddrPort) *relayConn {
	if m := h.clients.Load(); m != nil {
		return (*m)[ap]
	}
	return nil
}

// knowClient records c as ap's allocation.
func (h *relayHub) knowClient(ap netip.AddrPort, c *relayConn) {
	h.clientsMu.Lock()
	defer h.clientsMu.Unlock()
	var next map[netip.AddrPort]*relayConn
	if m := h.clients.Load(); m != nil {
		if (*m)[ap] == c {
			return // a further channel of a known client
		}
		next = maps.Clone(*m)
	} else {
		next = map[netip.AddrPort]*relayConn{}
	}
	next[ap] = c
	h.clients.Store(&next)
}

// forgetClient forgets ap's allocation if it is c.
func (h *relayHub) forgetClient(ap netip.AddrPort, c *relayConn) {
	h.clientsMu.Lock()
	defer h.clientsMu.Unlock()
	m := h.clients.Load()
	if m == nil || (*m)[ap] != c {
		return
	}
	next := maps.Clone(*m)
	delete(next, ap)
	h.clients.Store(&next)
}

// channelDeleted is pion/turn's OnChannelDeleted (the binding expired).
func (h *relayHub) channelDeleted(_, _ net.Addr, _, userID, _ string, relayAddr, peer net.Addr, num uint16) {
	c := h.allocationAt(relayAddr, userID)
	pa, ok := udpAddrPort(peer)
	if c == nil || !ok {
		return
	}
	c.chmu.Lock()
	defer c.chmu.Unlock()
	old := c.chans.Load()
	if old == nil {
		return
	}
	if v, ok := old.byPeer[pa]; !ok || v != num {
		return
	}
	next := &fastChannels{client: old.client, server: old.server, byPeer: make(map[netip.AddrPort]uint16, len(old.byPeer)),
		byNum: make(map[uint16]*net.UDPAddr, len(old.byNum))}
	for k, v := range old.byPeer {
		if k != pa {
			next.byPeer[k] = v
			next.byNum[v] = old.byNum[v]
		}
	}
	c.chans.Store(next)
}

// forward relays ChannelData p that a UDP client sent to the server at
// server as pion/turn would, without pion/turn: it finds the allocation
// of the 5-tuple (client, server, UDP) and the peer of the channel, and
// writes the data to the peer through the allocation's relay socket,
// which is all pion/turn does with it (a hairpin then goes on as above).
// It returns false, leaving p to pion/turn, for anything else: STUN, a
// client or channel not known here (no allocation, a TCP client, a channel
// not bound or expired), a malformed frame.
func (h *relayHub) forward(p []byte, from net.Addr, server netip.AddrPort) bool {
	if len(p) < 4 || p[0]&0xc0 != 0x40 {
		return false
	}
	client, ok := udpAddrPort(from)
	if !ok {
		return false
	}
	c := h.client(client)
	if c == nil {
		return false
	}
	fc := c.chans.Load()
	if fc == nil || fc.client != client || fc.server != server {
		return false
	}
	peer, ok := fc.byNum[binary.BigEndian.Uint16(p)]
	if !ok {
		return false
	}
	n := int(binary.BigEndian.Uint16(p[2:4]))
	if n > len(p)-4 {
		return false // pion/turn refuses it
	}
	// An error is the peer's refusal or a closed allocation, which
	// pion/turn only logs.
	c.WriteTo(p[4:4+n], peer)
	h.forwarded.Add(1)
	return true
}

// allocationAt is the relay socket of the allocation at relayAddr, if it
// is this server's and its session is session.
func (h *relayHub) allocationAt(relayAddr net.Addr, session string) *relayConn {
	ua, ok := relayAddr.(*net.UDPAddr)
	if !ok || ua.Port <= 0 || ua.Port >= 1<<16 || !ua.IP.Equal(h.ip) {
		return nil
	}
	c := h.ports[ua.Port].Load()
	if c == nil || c.session != session {
		return nil
	}
	return c
}

// channel sends p from c to dst's client as ChannelData if that client
// bound a channel to c's relayed address; false if not (or if it could not
// be queued).
func (h *relayHub) channel(c, dst *relayConn, p []byte) bool {
	fc := dst.chans.Load()
	if fc == nil || len(h.out) == 0 || len(p) > 0xffff {
		return false
	}
	num, ok := fc.byPeer[c.relayed]
	if !ok {
		return false
	}
	out := h.out[int(fc.client.Port())%len(h.out)]
	if out.writeChannelData(num, p, fc.client) != nil {
		return false
	}
	h.channeled.Add(1)
	return true
}

// errRefusedPeer is what a relay socket's WriteTo returns for a datagram
// to the relayed address that is not for another allocation of its session.
var errRefusedPeer = errors.New("turnserver: peer refused: the relay's own address, not an allocation of this session")

// route decides where a datagram from c to addr goes: to dst in-process
// (hairpin), through the kernel (dst nil, ok), or nowhere (not ok: the
// relayed address, but not an allocation of c's session).
func (h *relayHub) route(c *relayConn, addr net.Addr) (dst *relayConn, ok bool) {
	ua, isUDP := addr.(*net.UDPAddr)
	if !isUDP || uint(ua.Port) >= 1<<16 || !ua.IP.Equal(h.ip) {
		return nil, true
	}
	dst = h.ports[ua.Port].Load()
	switch {
	case dst != nil && dst.session == c.session:
		if h.disabled {
			return nil, true
		}
		return dst, true
	case dst == nil && h.publicOpen:
		return nil, true
	}
	h.refused.Add(1)
	return nil, false
}

// admits reports whether a datagram c read from its socket may pass: one
// from the relayed address only when it comes from an allocation of c's
// session (through the kernel: NoHairpin, or a NAT's hairpin).
func (h *relayHub) admits(c *relayConn, from net.Addr) bool {
	ua, ok := from.(*net.UDPAddr)
	if !ok || !ua.IP.Equal(h.ip) || h.publicOpen {
		return true
	}
	if src := h.ports[ua.Port].Load(); src != nil && src.session == c.session {
		return true
	}
	h.refused.Add(1)
	return false
}

// register records c under its session; false if the session has ended.
func (h *relayHub) register(c *relayConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.revoked[c.session]; ok {
		return false
	}
	m := h.sessions[c.session]
	if m == nil {
		m = map[*relayConn]struct{}{}
		h.sessions[c.session] = m
	}
	m[c] = struct{}{}
	return true
}

func (h *relayHub) unregister(c *relayConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.sessions[c.session]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(h.sessions, c.session)
		}
	}
}

// revoke ends session: its credentials are refused from now on (until
// hold has passed, after which they have expired) and its relay sockets
// are closed, which ends their allocations. It returns how many it closed.
func (h *relayHub) revoke(session string, hold time.Duration) int {
	now := time.Now()
	h.mu.Lock()
	for s, until := range h.revoked {
		if now.After(until) {
			delete(h.revoked, s)
		}
	}
	h.revoked[session] = now.Add(hold)
	conns := make([]*relayConn, 0, len(h.sessions[session]))
	for c := range h.sessions[session] {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return len(conns)
}

// isRevoked reports whether session has ended.
func (h *relayHub) isRevoked(session string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.revoked[session]
	return ok
}

// relayGenerator is the turn.RelayAddressGenerator of the server: UDP
// relay sockets are relayConns known to the hub (by port and by session)
// and tracked for Close; TCP relays (RFC 6062) are refused.
type relayGenerator struct {
	inner   turn.RelayAddressGenerator // pion/turn's Static or PortRange
	hub     *relayHub
	tracker *tracker
}

func newRelayGenerator(ip net.IP, min, max uint16, hub *relayHub, tr *tracker) *relayGenerator {
	g := &relayGenerator{hub: hub, tracker: tr}
	if min != 0 {
		g.inner = &turn.RelayAddressGeneratorPortRange{RelayAddress: ip, Address: "0.0.0.0", MinPort: min, MaxPort: max}
	} else {
		g.inner = &turn.RelayAddressGeneratorStatic{RelayAddress: ip, Address: "0.0.0.0"}
	}
	return g
}

func (g *relayGenerator) Validate() error { return g.inner.Validate() }

// AllocatePacketConn opens the UDP relay socket of an allocation (on the
// port pion/turn's generator picks) and makes it a relayConn.
func (g *relayGenerator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	pc, _, err := g.inner.AllocatePacketConn(conf)
	if err != nil {
		return nil, nil, err
	}
	udp, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, nil, errors.New("turnserver: relay socket is not UDP")
	}
	c := newRelayConn(udp, g.hub, g.tracker)
	c.session = conf.UserID
	port := c.port
	if !g.tracker.add(c) {
		udp.Close()
		return nil, nil, net.ErrClosed
	}
	if (conf.Network == "udp4") == (g.hub.ip.To4() != nil) {
		g.hub.ports[port].Store(c)
	}
	if !g.hub.register(c) {
		c.Close()
		return nil, nil, errSessionEnded
	}
	// pion/turn keeps the address it is given; c.addr stays private.
	return c, &net.UDPAddr{IP: g.hub.ip, Port: port}, nil
}

// errNoTCPRelay refuses TCP relaying (RFC 6062): WebRTC does not need it,
// and a relay that opens TCP connections for its clients reaches further
// than one that relays UDP between session peers. The request screen
// (screen.go) answers TCP Allocate and Connect requests before they get
// here; this is the second line.
var errNoTCPRelay = errors.New("turnserver: TCP relay allocations (RFC 6062) are not offered; use UDP allocations (WebRTC does)")

// errSessionEnded refuses an allocation for a session that has ended.
var errSessionEnded = errors.New("turnserver: the session has ended; start a new one for new credentials")

func (g *relayGenerator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errNoTCPRelay
}

func (g *relayGenerator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errNoTCPRelay
}

// hairpinPacket is a datagram queued for a relayConn.
type hairpinPacket struct {
	buf  *[]byte
	n    int
	from *net.UDPAddr
}

func getBuf(size int) *[]byte {
	if size <= hairpinBufSize {
		return hairpinBufs.Get().(*[]byte)
	}
	b := make([]byte, size)
	return &b
}

func putBuf(b *[]byte) {
	if cap(*b) == hairpinBufSize {
		hairpinBufs.Put(b)
	}
}

// relayConn is the UDP relay socket of an allocation: a UDP socket whose
// ReadFrom also returns what other allocations of this server hairpin to it.
//
// It starts in direct mode: pion/turn's allocation goroutine reads the
// socket itself, at no extra cost. The first hairpinned datagram switches
// it to queue mode for good: a goroutine of its own then reads the socket
// into the queue that hairpinning writers fill too, and ReadFrom waits on
// that queue alone. (Waiting on both the socket and the queue in one
// goroutine would cost a failed recvfrom and two deadline changes a
// hairpinned datagram.)
type relayConn struct {
	udp     *net.UDPConn
	hub     *relayHub
	tracker *tracker
	port    int
	addr    *net.UDPAddr   // relayed address; the source of what it hairpins (read-only)
	relayed netip.AddrPort // the same
	// chans are the channels its UDP client bound (nil: none known);
	// chmu serializes their changes.
	chans   atomic.Pointer[fastChannels]
	chmu    sync.Mutex
	session string // the session whose credentials allocated it (read-only once known)

	mu       sync.Mutex
	q        []hairpinPacket // ring of hairpinQueue, made on first use
	qHead    int
	qLen     int
	closed   bool
	err      error         // why the socket reader stopped (queue mode)
	deadline time.Time     // the caller's read deadline
	queued   bool          // queue mode
	started  bool          // the socket reader runs
	waiting  bool          // ReadFrom waits for notify (queue mode)
	notify   chan struct{} // wakes ReadFrom (queue mode); one token at most
	// kwaiting is set while ReadFrom blocks on the socket in direct mode:
	// the writer that switches to queue mode then wakes it with a past
	// read deadline.
	kwaiting atomic.Bool
}

func newRelayConn(udp *net.UDPConn, hub *relayHub, tr *tracker) *relayConn {
	port := udp.LocalAddr().(*net.UDPAddr).Port
	addr := &net.UDPAddr{IP: hub.ip, Port: port}
	relayed, _ := udpAddrPort(addr)
	return &relayConn{udp: udp, hub: hub, tracker: tr, port: port, addr: addr, relayed: relayed,
		notify: make(chan struct{}, 1)}
}

// ReadFrom returns the next datagram, hairpinned or from the socket.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		if c.qLen > 0 {
			pkt := c.pop()
			c.mu.Unlock()
			n := copy(p, (*pkt.buf)[:pkt.n])
			putBuf(pkt.buf)
			return n, pkt.from, nil
		}
		if c.closed {
			c.mu.Unlock()
			return 0, nil, net.ErrClosed
		}
		deadline := c.deadline
		if c.queued {
			if c.err != nil {
				err := c.err
				c.mu.Unlock()
				return 0, nil, err
			}
			if !c.started {
				// The switch to queue mode: the socket is this
				// goroutine's no longer (so it drops the deadline a
				// caller's read in direct mode had).
				c.started = true
				c.udp.SetReadDeadline(time.Time{})
				c.tracker.enter()
				go c.readSocket()
			}
			c.waiting = true
			c.mu.Unlock()
			if err := c.wait(deadline); err != nil {
				return 0, nil, err
			}
			continue
		}
		c.kwaiting.Store(true)
		c.mu.Unlock()

		c.tracker.enter()
		n, from, err := c.udp.ReadFrom(p)
		c.tracker.exit()
		c.kwaiting.Store(false)
		if err == nil {
			if !c.hub.admits(c, from) {
				continue
			}
			return n, from, nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			return n, from, err
		}
		// Woken to switch to queue mode (see deliver).
	}
}

// wait waits in queue mode until notified (by push, Close or
// SetReadDeadline) or past deadline.
func (c *relayConn) wait(deadline time.Time) error {
	c.tracker.enter()
	defer c.tracker.exit()
	if deadline.IsZero() {
		<-c.notify
		return nil
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-c.notify:
		return nil
	case <-t.C:
		c.mu.Lock()
		c.waiting = false
		c.mu.Unlock()
		return os.ErrDeadlineExceeded
	}
}

// pop takes the queue's head; c.mu is held and the queue not empty.
func (c *relayConn) pop() hairpinPacket {
	pkt := c.q[c.qHead]
	c.q[c.qHead] = hairpinPacket{}
	c.qHead = (c.qHead + 1) % hairpinQueue
	c.qLen--
	return pkt
}

// push queues a datagram, which it owns from then on, and wakes ReadFrom.
// c.mu is held.
func (c *relayConn) push(pkt hairpinPacket) bool {
	if c.closed || c.qLen == hairpinQueue {
		putBuf(pkt.buf)
		return false
	}
	if c.q == nil {
		c.q = make([]hairpinPacket, hairpinQueue)
	}
	c.q[(c.qHead+c.qLen)%hairpinQueue] = pkt
	c.qLen++
	c.wake()
	return true
}

// wake wakes a ReadFrom waiting in queue mode; c.mu is held.
func (c *relayConn) wake() {
	if c.waiting {
		c.waiting = false
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
}

// readSocket reads the socket into the queue (queue mode).
func (c *relayConn) readSocket() {
	defer c.tracker.exit()
	for {
		buf := getBuf(hairpinBufSize)
		n, from, err := c.udp.ReadFrom(*buf)
		if err != nil {
			putBuf(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// A wake-up meant for direct mode came late.
				c.udp.SetReadDeadline(time.Time{})
				continue
			}
			c.mu.Lock()
			c.err = err
			c.wake()
			c.mu.Unlock()
			return
		}
		if !c.hub.admits(c, from) {
			putBuf(buf)
			continue
		}
		ua, _ := from.(*net.UDPAddr)
		c.mu.Lock()
		if !c.push(hairpinPacket{buf: buf, n: n, from: ua}) {
			c.hub.dropped.Add(1)
		}
		c.mu.Unlock()
	}
}

// WriteTo sends p from the relayed address to addr: in-process when addr
// is the relayed address of another allocation of the same session on this
// server; not at all when it is the relayed address but not such an
// allocation (see policy.go).
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	dst, ok := c.hub.route(c, addr)
	switch {
	case !ok:
		return 0, errRefusedPeer
	case dst != nil:
		if c.hub.channel(c, dst, p) {
			c.hub.hairpinned.Add(1)
			return len(p), nil
		}
		dst.deliver(p, c.addr)
		return len(p), nil
	}
	return c.udp.WriteTo(p, addr)
}

// deliver queues a hairpinned datagram, dropping it when the queue is full.
func (c *relayConn) deliver(p []byte, from *net.UDPAddr) {
	buf := getBuf(len(p))
	n := copy(*buf, p)
	c.mu.Lock()
	ok := c.push(hairpinPacket{buf: buf, n: n, from: from})
	switchMode := ok && !c.queued
	c.queued = true
	c.mu.Unlock()
	if !ok {
		c.hub.dropped.Add(1)
		return
	}
	c.hub.hairpinned.Add(1)
	if switchMode && c.kwaiting.CompareAndSwap(true, false) {
		c.udp.SetReadDeadline(aLongTimeAgo)
	}
}

func (c *relayConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for c.qLen > 0 {
		putBuf(c.pop().buf)
	}
	c.wake()
	c.mu.Unlock()
	c.chmu.Lock()
	if fc := c.chans.Swap(nil); fc != nil {
		c.hub.forgetClient(fc.client, c)
	}
	c.chmu.Unlock()
	c.hub.ports[c.port].CompareAndSwap(c, nil)
	c.hub.unregister(c)
	c.tracker.remove(c)
	return c.udp.Close()
}

func (c *relayConn) LocalAddr() net.Addr { return c.udp.LocalAddr() }

func (c *relayConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.udp.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline of ReadFrom (in queue mode, of its wait
// on the queue).
func (c *relayConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	if c.queued {
		c.wake() // to wait with the new deadline
		return nil
	}
	return c.udp.SetReadDeadline(t)
}

func (c *relayConn) SetWriteDeadline(t time.Time) error { return c.udp.SetWriteDeadline(t) }
