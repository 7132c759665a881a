package turnserver

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// This file holds what a TURN client may reach through its allocation.
// Credentials are handed to a browser and an agent for one session; with
// them, a relay that relays anywhere is an open proxy into the relay's own
// host and network (its admin listener, a database on 127.0.0.1, a cloud
// metadata service on 169.254.169.254, the LAN). So permissions (pion/turn's
// PermissionHandler, consulted for CreatePermission, ChannelBind and
// Connect) are refused for peers in the ranges below and for the relay's
// own addresses, unless an operator allowed a range (Config.Allow).
//
// The relayed address (Config.PublicIP) is the exception: the two peers of
// a relay-only session both have an allocation here and must reach each
// other's relayed address. A permission for it is granted, but pion/turn's
// permissions are per IP, so the relay sockets (relay.go) check the port:
// datagrams to or from the relayed address pass only between allocations
// of the same session (unless Config.Allow holds that address too).

// blockedPrefixes are refused peers: loopback, link-local (with
// 169.254.169.254), private (RFC 1918, CGNAT, ULA), multicast, unspecified,
// broadcast and reserved ranges, "this network", the deprecated IPv6
// site-local range, and IPv4 embedded in IPv6 (mapped addresses are
// unmapped before the check).
var blockedPrefixes = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",      // "this network", unspecified
		"10.0.0.0/8",     // RFC 1918
		"100.64.0.0/10",  // CGNAT (RFC 6598)
		"127.0.0.0/8",    // loopback
		"169.254.0.0/16", // link-local, cloud metadata
		"172.16.0.0/12",  // RFC 1918
		"192.0.0.0/24",   // IETF protocol assignments
		"192.168.0.0/16", // RFC 1918
		"198.18.0.0/15",  // benchmarking
		"224.0.0.0/4",    // multicast
		"240.0.0.0/4",    // reserved, broadcast
		"::/127",         // unspecified, loopback
		"::/96",          // IPv4-compatible (deprecated)
		"64:ff9b:1::/48", // local-use NAT64
		"2001::/32",      // Teredo (embeds an IPv4 server and client)
		"fc00::/7",       // unique local (ULA)
		"fe80::/10",      // link-local
		"fec0::/10",      // site-local (deprecated)
		"ff00::/8",       // multicast
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// localAddrsTTL is how long the list of the host's own addresses is
// trusted before it is read again (interfaces come and go).
const localAddrsTTL = 30 * time.Second

// peerPolicy decides which peers allocations may reach.
type peerPolicy struct {
	allow  []netip.Prefix
	public netip.Addr // the relayed address

	mu        sync.Mutex
	local     map[netip.Addr]bool // the host's interface addresses
	localRead time.Time
	// interfaceAddrs lists the host's addresses (net.InterfaceAddrs; a
	// fixed list in tests).
	interfaceAddrs func() ([]net.Addr, error)
}

func newPeerPolicy(public net.IP, allow []netip.Prefix) *peerPolicy {
	p := &peerPolicy{allow: allow, interfaceAddrs: net.InterfaceAddrs}
	p.public, _ = netip.AddrFromSlice(public)
	p.public = p.public.Unmap()
	return p
}

// allowed reports whether an operator allowed ip explicitly.
func (p *peerPolicy) allowed(ip netip.Addr) bool {
	for _, pr := range p.allow {
		if pr.Contains(ip) {
			return true
		}
	}
	return false
}

// permit is the PermissionHandler: may an allocation of clientAddr's
// client relay to and from peer?
func (p *peerPolicy) permit(_ net.Addr, peer net.IP) bool {
	ip, ok := netip.AddrFromSlice(peer)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	switch {
	case p.allowed(ip):
		return true
	case ip == p.public:
		return true // port-checked by the relay sockets (see above)
	case blocked(ip), p.isLocal(ip):
		return false
	}
	return true
}

// nat64 and sixToFour are IPv6 ranges that carry an IPv4 address: the
// well-known NAT64 prefix (RFC 6052; the IPv4 address is the last 32
// bits) and 6to4 (RFC 3056; bits 16–47). Behind a NAT64 gateway
// 64:ff9b::a00:1 reaches 10.0.0.1, so the embedded address is checked as
// IPv4.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// blocked reports whether ip is in a refused range, or embeds an IPv4
// address that is.
func blocked(ip netip.Addr) bool {
	for _, pr := range blockedPrefixes {
		if pr.Contains(ip) {
			return true
		}
	}
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		return blocked(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(ip):
		return blocked(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return false
}

// isLocal reports whether ip is one of the host's own addresses.
func (p *peerPolicy) isLocal(ip netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.local == nil || time.Since(p.localRead) > localAddrsTTL {
		addrs, err := p.interfaceAddrs()
		if err != nil && p.local != nil {
			return p.local[ip] // keep the last list
		}
		p.local, p.localRead = map[netip.Addr]bool{}, time.Now()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if la, ok := netip.AddrFromSlice(n.IP); ok {
					p.local[la.Unmap()] = true
				}
			}
		}
	}
	return p.local[ip]
}

// publicAllowed reports whether the relayed address itself is in an
// allowed range: then any port of it may be reached (tests and labs where
// peers share the relay's address).
func (p *peerPolicy) publicAllowed() bool { return p.allowed(p.public) }
