package server

import (
	"net"
	"sync"
)

// connTracker remembers the raw connection behind each peer address, so
// the relay can end an agent's stream (revocation, a newer stream from the
// same device, shutdown) without a goroutine per stream waiting to do it:
// closing the connection unblocks the stream handler's Recv.
type connTracker struct {
	mu    sync.Mutex
	conns map[string]net.Conn
}

type trackingListener struct {
	net.Listener
	t *connTracker
}

type trackedConn struct {
	net.Conn
	t    *connTracker
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		if c.t.conns[c.RemoteAddr().String()] == c {
			delete(c.t.conns, c.RemoteAddr().String())
		}
		c.t.mu.Unlock()
	})
	return c.Conn.Close()
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, t: l.t}
	l.t.mu.Lock()
	l.t.conns[c.RemoteAddr().String()] = tc
	l.t.mu.Unlock()
	return tc, nil
}

// get returns the connection of a peer address, or nil.
func (t *connTracker) get(addr string) net.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conns[addr]
}
