package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// network is the simulated agents' side of the network: it picks each
// agent's loopback source address, stands in for the load balancer in
// front of several relays (a dial tries the agent's relay first, then the
// others, as a TCP balancer or DNS with several addresses does), and can
// black-hole all traffic for a while.
//
// Where the kernel cannot (kernelHole: Linux, root and nft), the blackhole
// is simulated at the agents' side: while
// it lasts, new connections hang until their dial times out, writes wait
// and what the relay sends is not delivered; when it ends both directions
// resume as TCP would after retransmitting. Connections that gRPC's
// keepalive gives up on during the outage are closed as with a real
// outage. The relay sees quiet connections, not lost packets.
type network struct {
	relays []string
	c      *counters

	mu   sync.Mutex
	hole chan struct{} // closed when the current blackhole ends; nil when none
	end  time.Time
}

// agentSource is the x-th loopback source address agents dial from
// (x ≥ 1): 127.0.0.1, 127.0.0.2, … 127.0.0.255, 127.0.1.0, ….
func agentSource(x int) net.IP {
	return net.IPv4(127, byte(x>>16), byte(x>>8), byte(x))
}

// errNoKernelHole is why a blackhole cannot be made in the kernel
// (kernelHole); it is then simulated at the agents' side.
var errNoKernelHole = errors.New("fleetsim: no blackhole in the kernel (it needs Linux, root and nft)")

// errBlackholed is a dial that gave up during a blackhole.
var errBlackholed = errors.New("fleetsim: network blackholed (simulated outage)")

// gate returns a channel that is closed when no blackhole is on.
func (n *network) gate() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.hole == nil {
		return closedCh
	}
	return n.hole
}

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// blackhole drops the network for d (an ongoing one is extended).
func (n *network) blackhole(d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	end := time.Now().Add(d)
	if n.hole == nil {
		n.hole = make(chan struct{})
		hole := n.hole
		go func() {
			for {
				n.mu.Lock()
				left := time.Until(n.end)
				if left <= 0 {
					n.hole = nil
					n.mu.Unlock()
					close(hole)
					return
				}
				n.mu.Unlock()
				time.Sleep(left)
			}
		}()
	}
	if end.After(n.end) {
		n.end = end
	}
}

// dialer returns the function an agent dials with: from source address
// local (nil: the kernel's choice), its relay first, then the others.
// a, when set, gets its connections accounted (handshakes that never
// reached Welcome).
func (n *network) dialer(local net.IP, a *simAgent) func(ctx context.Context, addr string) (net.Conn, error) {
	d := &net.Dialer{KeepAlive: -1}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		select {
		case <-n.gate():
		case <-ctx.Done():
			return nil, errBlackholed
		}
		var errs []error
		for _, target := range n.order(addr) {
			c, err := d.DialContext(ctx, "tcp", target)
			if err != nil {
				n.c.dialFailures.Add(1)
				errs = append(errs, err)
				if ctx.Err() != nil {
					break
				}
				continue
			}
			sc := &simConn{Conn: c, n: n, closed: make(chan struct{})}
			if a != nil {
				sc.a = a
				sc.gen = a.connGen.Add(1)
			}
			return sc, nil
		}
		return nil, fmt.Errorf("fleetsim: no relay reachable: %w", errors.Join(errs...))
	}
}

// order is addr, then the other relays.
func (n *network) order(addr string) []string {
	out := []string{addr}
	for _, r := range n.relays {
		if r != addr {
			out = append(out, r)
		}
	}
	return out
}

// simConn is a TCP connection that holds traffic during a blackhole and
// counts a connection closed before its stream was welcomed as a failed
// handshake.
type simConn struct {
	net.Conn
	n      *network
	a      *simAgent
	gen    uint64
	once   sync.Once
	closed chan struct{}
}

func (c *simConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	if err == nil {
		select {
		case <-c.n.gate():
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	return k, err
}

func (c *simConn) Write(p []byte) (int, error) {
	select {
	case <-c.n.gate():
	case <-c.closed:
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

func (c *simConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		if c.a != nil && c.a.welcomed.Load() < c.gen {
			c.n.c.failedHandshakes.Add(1)
		}
	})
	return c.Conn.Close()
}

// counters are one worker's running totals.
type counters struct {
	enrolled         atomic.Int64
	enrollFailed     atomic.Int64
	connects         atomic.Int64 // Welcomes received
	dialFailures     atomic.Int64
	failedHandshakes atomic.Int64
	samples          atomic.Uint64
	requests         atomic.Int64
	answered         atomic.Int64
	refused          atomic.Int64 // by the agent's own guard
	invChanges       atomic.Int64
}
