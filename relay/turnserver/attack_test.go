package turnserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/deskside/deskside/internal/testpoll"
)

// These tests attack the server the way a viewer or an agent with valid
// session credentials could: by asking it to relay to the relay's own host
// and network, by asking for TCP relaying, and by using the credentials
// after their session ended.

// attacker is a TURN client with valid credentials for a session.
type attacker struct {
	client  *turn.Client
	relayed net.PacketConn
}

// attack allocates on s for session over UDP (or TCP), failing on error.
func attack(t *testing.T, s *Server, session string, tcp bool) *attacker {
	t.Helper()
	c, err := dialClient(t, s, s.Credentials(session, time.Minute), tcp)
	if err != nil {
		t.Fatal(err)
	}
	relayed, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate with valid credentials: %v", err)
	}
	t.Cleanup(func() { relayed.Close() })
	return &attacker{client: c, relayed: relayed}
}

// dialClient makes a listening TURN client of s with cred.
func dialClient(t *testing.T, s *Server, cred Credentials, tcp bool) (*turn.Client, error) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port()))
	var conn net.PacketConn
	if tcp {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			return nil, err
		}
		conn = turn.NewSTUNConn(c)
	} else {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		conn = c
	}
	t.Cleanup(func() { conn.Close() })
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, Conn: conn, Username: cred.Username,
		Password: cred.Password, Realm: Realm, RTO: 200 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	t.Cleanup(c.Close)
	return c, c.Listen()
}

// turnCode is the STUN error code of err, or 0.
func turnCode(err error) int {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	return 0
}

// TestPermissionsRefused asks for permissions to the relay's host and
// network: each is refused (403), and relaying to them never starts.
func TestPermissionsRefused(t *testing.T) {
	// The relayed address is a documentation address, so that loopback
	// is only the relay's own host here (see TestLoopbackRelayedAddress
	// for a relay that advertises 127.0.0.1).
	s, err := Start(Config{Listen: "127.0.0.1:0", PublicIP: net.ParseIP("192.0.2.1")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// An address of the host outside every refused range, as a relay
	// with a public address on an interface has.
	own := netip.MustParseAddr("203.0.113.7")
	s.policy.mu.Lock() // the server's goroutines read it
	s.policy.interfaceAddrs = func() ([]net.Addr, error) {
		addrs, err := net.InterfaceAddrs()
		return append(addrs, &net.IPNet{IP: own.AsSlice(), Mask: net.CIDRMask(32, 32)}), err
	}
	s.policy.local = nil
	s.policy.mu.Unlock()

	for _, tcp := range []bool{false, true} {
		t.Run(fmt.Sprintf("tcp=%v", tcp), func(t *testing.T) {
			a := attack(t, s, "ses-attack", tcp)
			refused := []string{"127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1",
				"169.254.169.254", "0.0.0.0", "224.0.0.1", "255.255.255.255", own.String()}
			// The host's own addresses (the relay's listeners).
			addrs, _ := net.InterfaceAddrs()
			for _, ad := range addrs {
				if n, ok := ad.(*net.IPNet); ok && n.IP.To4() != nil {
					refused = append(refused, n.IP.String())
				}
			}
			for _, ip := range refused {
				err := a.client.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 5432})
				if code := turnCode(err); code != int(stun.CodeForbidden) {
					t.Errorf("permission to %s: %v (code %d), want 403 Forbidden", ip, err, code)
				}
			}
			// An IPv6 peer cannot be named on an IPv4 allocation (443);
			// the policy refuses the IPv6 ranges on its own (TestPolicy).
			for _, ip := range []string{"::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1"} {
				if err := a.client.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 5432}); err == nil {
					t.Errorf("permission to %s granted", ip)
				}
			}
			// A public peer is fine.
			if err := a.client.CreatePermission(&net.UDPAddr{IP: net.ParseIP("203.0.113.8"), Port: 5432}); err != nil {
				t.Errorf("permission to a public address: %v", err)
			}
		})
	}
}

// TestPolicy checks the permission handler against every family.
func TestPolicy(t *testing.T) {
	p := newPeerPolicy(net.ParseIP("198.51.100.1"), []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")})
	p.interfaceAddrs = func() ([]net.Addr, error) {
		return []net.Addr{&net.IPNet{IP: net.ParseIP("203.0.113.7"), Mask: net.CIDRMask(24, 32)},
			&net.IPNet{IP: net.ParseIP("2001:db8::7"), Mask: net.CIDRMask(64, 128)}}, nil
	}
	for ip, want := range map[string]bool{
		"127.0.0.1": false, "10.0.0.1": false, "169.254.169.254": false, "192.168.0.1": false, "172.31.255.255": false,
		"100.127.0.1": false, "0.0.0.0": false, "255.255.255.255": false, "239.1.1.1": false, "203.0.113.7": false,
		"::1": false, "::": false, "fe80::1": false, "fd12::1": false, "fc00::1": false, "ff02::1": false,
		"::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "::127.0.0.1": false, "2001:db8::7": false,
		// IPv4 inside IPv6: NAT64 (well-known prefix), 6to4, Teredo.
		"64:ff9b::a00:1": false, "64:ff9b::a9fe:a9fe": false, "64:ff9b::7f00:1": false,
		"2002:a00:1::1": false, "2002:c0a8:101::": false, "2001:0:4136:e378::1": false,
		"64:ff9b::808:808": true, // 8.8.8.8 through NAT64
		"2002:808:808::1":  true, // 8.8.8.8 through 6to4
		"10.1.2.3":         true, // allowed range
		"198.51.100.1":     true, // the relayed address (port-checked on the data path)
		"203.0.113.8":      true,
		"2001:db8::8":      true,
		"8.8.8.8":          true,
		"::ffff:8.8.8.8":   true,
	} {
		if got := p.permit(nil, net.ParseIP(ip)); got != want {
			t.Errorf("permit(%s) = %v, want %v", ip, got, want)
		}
	}
}

// TestLoopbackRelayedAddress: a relay that advertises 127.0.0.1 (the
// default, and every test) must grant permissions for it, as the peers of
// a relay-only session reach each other there. Its other ports (a
// database, the admin listener) stay out of reach both ways; allocations
// of another session too.
func TestLoopbackRelayedAddress(t *testing.T) {
	s := startWith(t, Config{})
	service, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer service.Close()
	a := attack(t, s, "ses-a", false)
	if err := a.client.CreatePermission(service.LocalAddr()); err != nil {
		t.Fatalf("permission for the relayed address: %v", err)
	}
	other := attack(t, s, "ses-b", false)
	// To the service and to another session's allocation: refused.
	testpoll.CheckFor(t, waitLimit, 20*time.Millisecond, func() error {
		a.relayed.WriteTo([]byte("to the service"), service.LocalAddr())
		if n := s.Stats().Refused; n == 0 {
			return errors.New("datagram to a loopback service not refused")
		}
		return nil
	})
	before := s.Stats().Refused
	testpoll.CheckFor(t, waitLimit, 20*time.Millisecond, func() error {
		a.relayed.WriteTo([]byte("to another session"), other.relayed.LocalAddr())
		if s.Stats().Refused == before {
			return errors.New("datagram to another session's allocation not refused")
		}
		return nil
	})
	// From the service to the allocation (whose client permitted
	// 127.0.0.1): dropped at the relay socket.
	before = s.Stats().Refused
	testpoll.CheckFor(t, waitLimit, 20*time.Millisecond, func() error {
		service.WriteTo([]byte("from the service"), a.relayed.LocalAddr())
		if s.Stats().Refused == before {
			return errors.New("datagram from a loopback service not refused")
		}
		return nil
	})
	// Nothing of the above reached the other side.
	service.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, from, err := service.ReadFrom(make([]byte, 100)); err == nil {
		t.Errorf("the service got %d bytes from %v", n, from)
	}
	if st := s.Stats(); st.Hairpinned != 0 {
		t.Errorf("%d datagrams hairpinned between sessions", st.Hairpinned)
	}
}

// TestTCPAllocationRefused asks for an RFC 6062 TCP allocation over TCP and
// over UDP: 442 Unsupported Transport Protocol.
func TestTCPAllocationRefused(t *testing.T) {
	s := startWith(t, Config{})
	for _, tcp := range []bool{true, false} {
		t.Run(fmt.Sprintf("tcp=%v", tcp), func(t *testing.T) {
			c, err := dialClient(t, s, s.Credentials("ses-tcp", time.Minute), tcp)
			if err != nil {
				t.Fatal(err)
			}
			alloc, err := c.AllocateTCP()
			if err == nil {
				alloc.Close()
				t.Fatal("TCP allocation granted")
			}
			if code := turnCode(err); code != int(stun.CodeUnsupportedTransProto) {
				t.Fatalf("TCP allocation: %v (code %d), want 442", err, code)
			}
			// The connection still serves UDP allocations.
			relayed, err := c.Allocate()
			if err != nil {
				t.Fatalf("UDP allocation after the refusal: %v", err)
			}
			relayed.Close()
		})
	}
}

// TestEndSession ends a session with live allocations: they close at once,
// and the session's credentials are refused from then on; another
// session's go on.
func TestEndSession(t *testing.T) {
	s := startWith(t, Config{})
	a, b := newPeer(t, s, "ses-end", false), newPeer(t, s, "ses-end", true)
	relayBothWays(t, a, b)
	c := newPeer(t, s, "ses-other", false)
	cred := s.Credentials("ses-end", time.Minute)

	if n := s.EndSession("ses-end"); n != 2 {
		t.Errorf("EndSession closed %d allocations, want 2", n)
	}
	testpoll.CheckFor(t, waitLimit, 10*time.Millisecond, func() error {
		if n := s.Stats().Allocations; n != 1 {
			return fmt.Errorf("%d allocations, want the other session's 1", n)
		}
		return nil
	})
	// The credentials, fresh or in use, are refused.
	for _, tcp := range []bool{false, true} {
		cl, err := dialClient(t, s, cred, tcp)
		if err != nil {
			t.Fatal(err)
		}
		r, err := cl.Allocate()
		if err == nil {
			r.Close()
		}
		if code := turnCode(err); code != int(stun.CodeUnauthorized) {
			t.Errorf("tcp=%v: allocation with an ended session's credentials: %v (code %d), want 401", tcp, err, code)
		}
	}
	if err := a.client.CreatePermission(c.relayed.LocalAddr()); err == nil {
		t.Error("permission with an ended session's credentials")
	}
}

// TestAllowedRange: an operator's allowed range (here loopback, as a lab
// on one host) is relayed to, both ways.
func TestAllowedRange(t *testing.T) {
	s := startWith(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	a := newPeer(t, s, "ses-lab", false)
	host, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if src := expect(t, a.relayed, host, []byte("to the lab")); src.(*net.UDPAddr).Port != a.relayed.LocalAddr().(*net.UDPAddr).Port {
		t.Errorf("datagram to the lab host from %v, want the relayed port", src)
	}
	if src := expect(t, host, a.relayed, []byte("from the lab")); src.String() != host.LocalAddr().String() {
		t.Errorf("datagram from the lab host from %v", src)
	}
	// The allowed range does not open 10.0.0.0/8.
	if code := turnCode(a.client.CreatePermission(&net.UDPAddr{IP: net.ParseIP("10.0.0.1"), Port: 1})); code != int(stun.CodeForbidden) {
		t.Errorf("permission to 10.0.0.1: code %d, want 403", code)
	}
}
