package turnserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/deskside/deskside/internal/testkit"
)

// waitLimit bounds waits that succeed at once unless something is broken.
const waitLimit = 20 * time.Second

func startWith(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Listen, cfg.PublicIP = "127.0.0.1:0", net.ParseIP("127.0.0.1")
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// peer is a TURN client and its relayed address.
type peer struct {
	conn    net.PacketConn
	client  *turn.Client
	relayed net.PacketConn
	once    sync.Once
}

func (p *peer) close() {
	p.once.Do(func() {
		p.relayed.Close()
		p.client.Close()
		p.conn.Close()
	})
}

// newPeer allocates with valid credentials, over UDP or TCP.
func newPeer(t *testing.T, s *Server, session string, tcp bool) *peer {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port()))
	var conn net.PacketConn
	if tcp {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	} else {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = c
	}
	cred := s.Credentials(session, time.Minute)
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, Conn: conn, Username: cred.Username,
		Password: cred.Password, Realm: Realm, RTO: 200 * time.Millisecond})
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		c.Close()
		conn.Close()
		t.Fatal(err)
	}
	relayed, err := c.Allocate()
	if err != nil {
		c.Close()
		conn.Close()
		t.Fatalf("allocate: %v", err)
	}
	p := &peer{conn: conn, client: c, relayed: relayed}
	t.Cleanup(p.close)
	return p
}

// expect sends msg from `from` to `to` (repeatedly, as UDP may lose it)
// until `to` reads it, and returns the source address `to` saw.
func expect(t *testing.T, from net.PacketConn, to net.PacketConn, msg []byte) net.Addr {
	t.Helper()
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			from.WriteTo(msg, to.LocalAddr())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	to.SetReadDeadline(time.Now().Add(waitLimit))
	defer to.SetReadDeadline(time.Time{})
	buf := make([]byte, 1600)
	for {
		n, src, err := to.ReadFrom(buf)
		if err != nil {
			t.Fatalf("waiting for %q: %v", msg, err)
		}
		if bytes.Equal(buf[:n], msg) {
			return src
		}
	}
}

// relayBothWays permits a and b to each other and relays a datagram each
// way, checking the source address the receiver sees.
func relayBothWays(t *testing.T, a, b *peer) {
	t.Helper()
	// A TURN client's first datagram to a peer creates the permission
	// that lets the peer's datagrams in.
	if _, err := a.relayed.WriteTo([]byte("permit"), b.relayed.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if src := expect(t, b.relayed, a.relayed, []byte("b to a")); src.String() != b.relayed.LocalAddr().String() {
		t.Errorf("a got b's datagram from %v, want b's relayed address %v", src, b.relayed.LocalAddr())
	}
	if src := expect(t, a.relayed, b.relayed, []byte("a to b")); src.String() != a.relayed.LocalAddr().String() {
		t.Errorf("b got a's datagram from %v, want a's relayed address %v", src, a.relayed.LocalAddr())
	}
}

func TestHairpin(t *testing.T) {
	// Loopback allowed: the "other host" below is on it.
	s := startWith(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	a, b := newPeer(t, s, "ses", false), newPeer(t, s, "ses", true)
	relayBothWays(t, a, b)
	if st := s.Stats(); st.Hairpinned == 0 || st.Allocations != 2 {
		t.Errorf("stats %+v: want datagrams relayed in-process between 2 allocations", st)
	}

	// An allocation that takes hairpinned datagrams still takes those
	// from other hosts (b permitted 127.0.0.1 above).
	other, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if src := expect(t, other, b.relayed, []byte("from afar")); src.String() != other.LocalAddr().String() {
		t.Errorf("b got a datagram from %v, want %v", src, other.LocalAddr())
	}
	if src := expect(t, b.relayed, other, []byte("to afar")); src.(*net.UDPAddr).Port != b.relayed.LocalAddr().(*net.UDPAddr).Port {
		t.Errorf("datagram to a host from %v, want b's relayed port", src)
	}
}

func TestNoHairpin(t *testing.T) {
	s := startWith(t, Config{NoHairpin: true})
	relayBothWays(t, newPeer(t, s, "ses", false), newPeer(t, s, "ses", false))
	if st := s.Stats(); st.Hairpinned != 0 {
		t.Errorf("stats %+v: want no datagram relayed in-process", st)
	}
}

// TestCloseReleasesEverything closes a server with live UDP and TCP
// clients and allocations: every socket is free again and every goroutine
// of the server gone.
func TestCloseReleasesEverything(t *testing.T) {
	// pion/turn's goroutines end once their sockets are closed; the
	// clients' once closed.
	testkit.CheckGoroutines(t)
	s, err := Start(Config{Listen: "127.0.0.1:0", PublicIP: net.ParseIP("127.0.0.1"), UDPSockets: 2})
	if err != nil {
		t.Fatal(err)
	}
	var peers []*peer
	for i := range 4 {
		peers = append(peers, newPeer(t, s, fmt.Sprint("session-", i/2), i%2 == 1))
	}
	relayBothWays(t, peers[0], peers[1])
	relayBothWays(t, peers[2], peers[3])
	port := s.Port()
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if n := s.tracker.count(); n != 0 {
		t.Errorf("%d sockets left open", n)
	}
	// Without SO_REUSEPORT, binding fails while any socket of the server
	// has the port. (Retried: a process may take a freed port for a
	// moment.)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	free(t, "UDP port", func() (io.Closer, error) { return net.ListenPacket("udp4", addr) })
	free(t, "TCP port", func() (io.Closer, error) { return net.Listen("tcp4", addr) })
	for _, p := range peers {
		a := p.relayed.LocalAddr().(*net.UDPAddr)
		if s.hub.ports[a.Port].Load() != nil {
			t.Errorf("relay socket %v still known", a)
		}
		free(t, "relayed address", func() (io.Closer, error) { return net.ListenPacket("udp4", a.String()) })
		p.close()
	}
}

// free checks that listen succeeds (retrying while the address is taken).
func free(t *testing.T, what string, listen func() (io.Closer, error)) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		c, err := listen()
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s still taken: %v", what, err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// relayPair makes two relayConns known to one hub, and a plain UDP host.
func relayPair(t *testing.T) (hub *relayHub, tr *tracker, c1, c2 *relayConn, host *net.UDPConn) {
	t.Helper()
	hub, tr = newRelayHub(net.ParseIP("127.0.0.1"), false), newTracker()
	hub.publicOpen = true // the host below is on the relayed address
	mk := func() *relayConn {
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("127.0.0.1")})
		if err != nil {
			t.Fatal(err)
		}
		c := newRelayConn(u, hub, tr)
		tr.add(c)
		hub.ports[c.port].Store(c)
		return c
	}
	c1, c2 = mk(), mk()
	host, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close(); tr.closeAll() })
	return hub, tr, c1, c2, host
}

// waitFor waits until cond holds (failing after waitLimit).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s", what)
		}
		runtime.Gosched()
	}
}

type readResult struct {
	data string
	from string
	err  error
}

func readOne(c net.PacketConn) readResult {
	buf := make([]byte, 1600)
	n, from, err := c.ReadFrom(buf)
	r := readResult{data: string(buf[:n]), err: err}
	if from != nil {
		r.from = from.String()
	}
	return r
}

func TestRelayConn(t *testing.T) {
	hub, tr, c1, c2, host := relayPair(t)
	c1.SetReadDeadline(time.Now().Add(waitLimit))

	// Direct mode: pion/turn's goroutine reads the socket.
	if _, err := host.WriteTo([]byte("direct"), c1.udp.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if r := readOne(c1); r.err != nil || r.data != "direct" || r.from != host.LocalAddr().String() {
		t.Fatalf("direct read %+v", r)
	}

	// A hairpinned datagram wakes a read blocked on the socket, and comes
	// from the sender's relayed address.
	got := make(chan readResult)
	go func() { got <- readOne(c1) }()
	waitFor(t, "read blocked on the socket", c1.kwaiting.Load)
	if n, err := c2.WriteTo([]byte("hairpin"), &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: c1.port}); err != nil || n != 7 {
		t.Fatalf("write %d, %v", n, err)
	}
	if r := <-got; r.err != nil || r.data != "hairpin" || r.from != c2.addr.String() {
		t.Fatalf("hairpinned read %+v", r)
	}
	if hub.hairpinned.Load() != 1 {
		t.Errorf("hairpinned %d", hub.hairpinned.Load())
	}

	// Queue mode: the socket's datagrams still arrive, through the queue.
	if _, err := host.WriteTo([]byte("queued"), c1.udp.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if r := readOne(c1); r.err != nil || r.data != "queued" || r.from != host.LocalAddr().String() {
		t.Fatalf("queue mode read %+v", r)
	}
	// Writes to others than this server's allocations go out on the socket.
	if _, err := c1.WriteTo([]byte("out"), host.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	host.SetReadDeadline(time.Now().Add(waitLimit))
	if r := readOne(host); r.err != nil || r.data != "out" || r.from != c1.udp.LocalAddr().String() {
		t.Fatalf("host read %+v", r)
	}

	// Deadlines apply in queue mode.
	c1.SetReadDeadline(time.Now().Add(-time.Second))
	if r := readOne(c1); !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past deadline: %+v", r)
	}
	c1.SetReadDeadline(time.Time{})

	// A full queue drops.
	for i := range hairpinQueue + 3 {
		c2.WriteTo([]byte(strconv.Itoa(i)), c1.addr)
	}
	if d := hub.dropped.Load(); d != 3 {
		t.Errorf("%d dropped, want 3", d)
	}
	for i := range hairpinQueue {
		if r := readOne(c1); r.err != nil || r.data != strconv.Itoa(i) {
			t.Fatalf("queued datagram %d: %+v", i, r)
		}
	}

	// Close wakes a blocked read; the socket's reader ends.
	go func() { got <- readOne(c1) }()
	var wg sync.WaitGroup
	wg.Go(func() {
		if r := <-got; !errors.Is(r.err, net.ErrClosed) {
			t.Errorf("read on closed: %+v", r)
		}
	})
	waitFor(t, "read waiting on the queue", func() bool {
		c1.mu.Lock()
		defer c1.mu.Unlock()
		return c1.waiting
	})
	c1.Close()
	wg.Wait()
	if hub.ports[c1.port].Load() != nil {
		t.Error("closed relay socket still known")
	}
	c2.Close()
	tr.closeAll() // returns once no reader is left
	if n := tr.busy.Load(); n != 0 {
		t.Errorf("%d readers left", n)
	}
}
