package turnserver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
)

// sendSeq sends n numbered datagrams from a to b and checks that b reads
// every one of them, in order.
func sendSeq(t *testing.T, from, to *peer, n int) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 1600)
		to.relayed.SetReadDeadline(time.Now().Add(waitLimit))
		defer to.relayed.SetReadDeadline(time.Time{})
		next := uint32(0)
		for next < uint32(n) {
			k, _, err := to.relayed.ReadFrom(buf)
			if err != nil {
				errc <- err
				return
			}
			if k != 1000 {
				continue // a probe or greeting of the setup
			}
			if seq := binary.BigEndian.Uint32(buf); seq != next {
				t.Errorf("datagram %d arrived when %d was due", seq, next)
				next = seq
			}
			next++
		}
		errc <- nil
	}()
	p := make([]byte, 1000)
	for i := range n {
		binary.BigEndian.PutUint32(p, uint32(i))
		if _, err := from.relayed.WriteTo(p, to.relayed.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if i%20 == 19 {
			time.Sleep(time.Millisecond)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("after %d datagrams: %v", n, err)
	}
}

// TestHairpinChannelData: once the receiving client has bound a channel to
// the sender's relayed address, hairpinned datagrams go to it as
// ChannelData from the sending side (Stats.Channeled), all of them, in
// order; without the channel (deleted) or to a TCP client they take the
// allocation's own loop, and still arrive.
func TestHairpinChannelData(t *testing.T) {
	s := startWith(t, Config{})
	a, b := newPeer(t, s, "ses", false), newPeer(t, s, "ses", false)
	relayBothWays(t, a, b)
	// pion/turn's client binds its channel in the background after its
	// first datagram to a peer: wait until each client has bound one to
	// the other's relayed address.
	bound := func(from, to *peer) bool {
		c := s.hub.allocationAt(from.relayed.LocalAddr(), "ses")
		if c == nil {
			return false
		}
		fc := c.chans.Load()
		if fc == nil {
			return false
		}
		ta, _ := udpAddrPort(to.relayed.LocalAddr())
		_, ok := fc.byPeer[ta]
		return ok
	}
	deadline := time.Now().Add(waitLimit)
	for !bound(b, a) || !bound(a, b) {
		if time.Now().After(deadline) {
			t.Fatalf("the clients bound no channels to each other: %+v", s.Stats())
		}
		b.relayed.WriteTo([]byte("bind"), a.relayed.LocalAddr())
		a.relayed.WriteTo([]byte("bind"), b.relayed.LocalAddr())
		time.Sleep(10 * time.Millisecond)
	}
	// The last "bind" datagrams may still be on their way: count from
	// when the counters stand still.
	before := s.Stats()
	for settle := time.Now().Add(waitLimit); time.Now().Before(settle); {
		time.Sleep(50 * time.Millisecond)
		now := s.Stats()
		if now == before {
			break
		}
		before = now
	}
	sendSeq(t, a, b, 500)
	after := s.Stats()
	if got := after.Channeled - before.Channeled; got != 500 {
		t.Errorf("%d of 500 datagrams channeled", got)
	}
	// a's client sent them on its channel: relayed without pion/turn.
	if got := after.Forwarded - before.Forwarded; got != 500 {
		t.Errorf("%d of 500 datagrams forwarded without pion/turn", got)
	}

	// The channel's end (pion/turn's OnChannelDeleted, here called as when
	// it expires): back to the allocation's loop. A wrong session or
	// address changes nothing.
	s.hub.channelDeleted(nil, nil, "UDP", "other-session", Realm, b.relayed.LocalAddr(), a.relayed.LocalAddr(), 0x4000)
	fc := s.hub.allocationAt(b.relayed.LocalAddr(), "ses").chans.Load()
	if fc == nil || len(fc.byPeer) != 1 {
		t.Fatalf("channels of b: %+v, want one", fc)
	}
	var num uint16
	for _, v := range fc.byPeer {
		num = v
	}
	s.hub.channelDeleted(nil, nil, "UDP", "ses", Realm, b.relayed.LocalAddr(), a.relayed.LocalAddr(), num)
	before = s.Stats()
	sendSeq(t, a, b, 100)
	after = s.Stats()
	if after.Channeled != before.Channeled || after.Hairpinned-before.Hairpinned < 100 || after.Forwarded-before.Forwarded < 100 {
		t.Errorf("after the channel's end: %+v then %+v, want 100 more hairpinned and forwarded, none channeled", before, after)
	}

	// What forward leaves to pion/turn: a channel the client did not bind,
	// a client or server address that is not the allocation's, a length
	// past the datagram, STUN. An allocation's end forgets its client.
	ac := s.hub.allocationAt(a.relayed.LocalAddr(), "ses")
	afc := ac.chans.Load()
	var aNum uint16
	for _, v := range afc.byPeer {
		aNum = v
	}
	frame := func(num uint16, length int, payload int) []byte {
		p := make([]byte, 4+payload)
		binary.BigEndian.PutUint16(p, num)
		binary.BigEndian.PutUint16(p[2:], uint16(length))
		return p
	}
	from := net.UDPAddrFromAddrPort(afc.client)
	other := net.UDPAddrFromAddrPort(netip.AddrPortFrom(afc.client.Addr(), afc.client.Port()+1))
	for _, tc := range []struct {
		name   string
		p      []byte
		from   net.Addr
		server netip.AddrPort
		want   bool
	}{
		{"bound channel", frame(aNum, 8, 8), from, afc.server, true},
		{"padded", frame(aNum, 5, 8), from, afc.server, true},
		{"channel not bound", frame(aNum+1, 8, 8), from, afc.server, false},
		{"another client", frame(aNum, 8, 8), other, afc.server, false},
		{"another server address", frame(aNum, 8, 8), from, netip.AddrPortFrom(afc.server.Addr(), afc.server.Port()+1), false},
		{"length past the end", frame(aNum, 9, 8), from, afc.server, false},
		{"header only", frame(aNum, 0, 0)[:3], from, afc.server, false},
		{"STUN", make([]byte, 20), from, afc.server, false},
	} {
		if got := s.hub.forward(tc.p, tc.from, tc.server); got != tc.want {
			t.Errorf("forward, %s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// A datagram that fills the reader's buffer may have been cut short:
	// pion/turn drops it, and it is not forwarded either.
	buf := make([]byte, 64)
	spc := &screenedPacketConn{PacketConn: &onePacket{p: frame(aNum, 8, len(buf)-4), from: from}, s: &screener{}, hub: s.hub, server: afc.server}
	fwd := s.hub.forwarded.Load()
	if n, _, err := spc.ReadFrom(buf); err != nil || n != len(buf) || s.hub.forwarded.Load() != fwd {
		t.Errorf("a datagram filling the buffer: read %d, %v; forwarded %d, want it read and none forwarded", n, err, s.hub.forwarded.Load()-fwd)
	}

	a.close()
	deadline = time.Now().Add(waitLimit)
	for s.hub.allocationAt(a.relayed.LocalAddr(), "ses") != nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ac.Close() // as pion/turn does when the allocation ends
	if s.hub.client(afc.client) != nil {
		t.Error("a closed allocation's client is still known")
	}
	if s.hub.forward(frame(aNum, 8, 8), from, afc.server) {
		t.Error("ChannelData for a closed allocation forwarded")
	}

	// A TCP client's datagrams are never channeled from the sending side.
	c, d := newPeer(t, s, "tcp", true), newPeer(t, s, "tcp", false)
	relayBothWays(t, c, d)
	time.Sleep(100 * time.Millisecond) // let c's channel binding settle
	before = s.Stats()
	sendSeq(t, d, c, 100)
	if after := s.Stats(); after.Channeled != before.Channeled {
		t.Errorf("%d datagrams to a TCP client channeled", after.Channeled-before.Channeled)
	}
}

// onePacket is a net.PacketConn whose ReadFrom returns one datagram.
type onePacket struct {
	net.PacketConn
	p    []byte
	from net.Addr
}

func (o *onePacket) ReadFrom(b []byte) (int, net.Addr, error) {
	return copy(b, o.p), o.from, nil
}
