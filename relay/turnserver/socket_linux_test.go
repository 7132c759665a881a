package turnserver

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestUDPSocketsSharePort: with several UDP sockets on the listening port,
// clients are spread over them and each serves its clients' allocations.
func TestUDPSocketsSharePort(t *testing.T) {
	s := startWith(t, Config{UDPSockets: 2})
	if len(s.udp) != 2 || s.Stats().UDPSockets != 2 {
		t.Fatalf("%d UDP sockets, want 2", len(s.udp))
	}
	for _, c := range s.udp {
		if p := c.LocalAddr().(*net.UDPAddr).Port; p != s.Port() {
			t.Errorf("socket on port %d, want %d", p, s.Port())
		}
	}
	// 40 clients all land on one of 2 sockets with probability 2^-39.
	var peers []*peer
	for i := range 40 {
		peers = append(peers, newPeer(t, s, fmt.Sprint("session-", i/2), false))
	}
	relayBothWays(t, peers[0], peers[1])
	if n := s.Stats().Allocations; n != 40 {
		t.Errorf("%d allocations, want 40", n)
	}
	for i, c := range s.lconns {
		if n := c.(*listenConn).datagrams.Load(); n == 0 {
			t.Errorf("socket %d read nothing", i)
		}
	}

	// The buffers are as large as configured, or as the system allows.
	want := DefaultSocketBuffer
	if raw, err := os.ReadFile("/proc/sys/net/core/rmem_max"); err == nil {
		if m, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && 2*m < want {
			want = 2 * m // without CAP_NET_ADMIN
		}
	}
	if rcv, _ := socketBuffers(s.udp[0]); rcv < want {
		t.Errorf("receive buffer %d, want at least %d", rcv, want)
	}
}
