package turnserver

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// This file answers the TURN requests for TCP relaying (RFC 6062) before
// pion/turn sees them: an Allocate request for a TCP allocation gets 442
// (Unsupported Transport Protocol), a Connect or ConnectionBind request
// 400 (Bad Request). pion/turn v5 offers TCP allocations to every client
// and has no option to turn them off; its relay-address generator (ours
// refuses TCP too, relay.go) is consulted only after it picked the answer
// 508 (Insufficient Capacity), which tells a client to retry elsewhere.
//
// Only authenticated requests are answered here, with MESSAGE-INTEGRITY as
// pion/turn would; the rest go on to pion/turn, which asks for credentials
// (401) or refuses them.

// Reasons sent with the refusals.
const (
	reasonNoTCPAllocation = "TCP relay allocations (RFC 6062) are not offered; allocate UDP"
	reasonNoTCPConnect    = "TCP relaying (RFC 6062) is not offered"
)

// screener refuses TCP relaying requests; auth is the server's AuthHandler.
type screener struct {
	auth turn.AuthHandler
}

// reply returns the refusal for datagram p (one STUN message or ChannelData
// frame from a client), or nil to let pion/turn handle it. It costs two
// comparisons for anything but the requests it refuses.
func (s *screener) reply(p []byte) []byte {
	if len(p) < 20 || p[0]&0xc0 != 0 || !stun.IsMessage(p) {
		return nil // ChannelData, or not STUN
	}
	var code stun.ErrorCode
	var reason string
	method := stun.MethodAllocate
	switch binary.BigEndian.Uint16(p[0:2]) {
	case 0x0003: // Allocate request
		code, reason = stun.CodeUnsupportedTransProto, reasonNoTCPAllocation
	case 0x000a: // Connect request
		code, reason, method = stun.CodeBadRequest, reasonNoTCPConnect, stun.MethodConnect
	case 0x000b: // ConnectionBind request
		code, reason, method = stun.CodeBadRequest, reasonNoTCPConnect, stun.MethodConnectionBind
	default:
		return nil
	}
	m := &stun.Message{Raw: append([]byte(nil), p...)}
	if err := m.Decode(); err != nil {
		return nil
	}
	if method == stun.MethodAllocate {
		v, err := m.Get(stun.AttrRequestedTransport)
		if err != nil || len(v) == 0 || v[0] == 17 { // UDP, or pion/turn's 400
			return nil
		}
	}
	var user stun.Username
	var realm stun.Realm
	if user.GetFrom(m) != nil || realm.GetFrom(m) != nil {
		return nil
	}
	_, key, ok := s.auth(&turn.RequestAttributes{Username: user.String(), Realm: realm.String(), Method: method})
	if !ok || stun.MessageIntegrity(key).Check(m) != nil {
		return nil
	}
	r, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.NewType(method, stun.ClassErrorResponse),
		&stun.ErrorCodeAttribute{Code: code, Reason: []byte(reason)}, stun.MessageIntegrity(key), stun.Fingerprint)
	if err != nil {
		return nil
	}
	return r.Raw
}

// screenedPacketConn is a listening UDP socket as pion/turn reads it:
// ChannelData the hub can relay itself (relayHub.forward) does not reach
// pion/turn, nor TCP relaying requests (the screen).
type screenedPacketConn struct {
	net.PacketConn
	s      *screener
	hub    *relayHub      // nil: no forwarding
	server netip.AddrPort // the socket's address
}

func (c *screenedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, from, err
		}
		// A datagram that filled p may have been cut short: pion/turn drops
		// it (its inbound MTU), so it is not forwarded either.
		if c.hub != nil && n < len(p) && c.hub.forward(p[:n], from, c.server) {
			continue
		}
		if r := c.s.reply(p[:n]); r != nil {
			c.PacketConn.WriteTo(r, from)
			continue
		}
		return n, from, nil
	}
}

// screenedConn is an accepted TCP connection as pion/turn reads it: frame
// by frame (STUN or ChannelData), each screened.
type screenedConn struct {
	net.Conn
	s       *screener
	frames  *turn.STUNConn
	buf     []byte
	pending []byte
}

// screenBufSize holds any frame pion/turn accepts (its inbound MTU is
// 1,600 bytes); a larger one ends the connection as pion/turn would.
const screenBufSize = 2048

func newScreenedConn(c net.Conn, s *screener) *screenedConn {
	return &screenedConn{Conn: c, s: s, frames: turn.NewSTUNConn(c), buf: make([]byte, screenBufSize)}
}

func (c *screenedConn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		n, _, err := c.frames.ReadFrom(c.buf)
		if err != nil {
			return 0, err
		}
		if r := c.s.reply(c.buf[:n]); r != nil {
			if _, err := c.Conn.Write(r); err != nil {
				return 0, err
			}
			continue
		}
		c.pending = c.buf[:n]
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}
