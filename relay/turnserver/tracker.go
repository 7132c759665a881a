package turnserver

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// tracker knows every socket the server opened or handed to pion/turn, so
// that Close releases them all at once (pion/turn's Server.Close closes only
// the listening sockets and leaves allocations and accepted TCP connections
// to goroutines that finish later), and counts the goroutines blocked in
// their reads, so that Close returns once those have left.
type tracker struct {
	mu     sync.Mutex
	idle   *sync.Cond // signalled when busy drops to 0 after closing
	open   map[io.Closer]struct{}
	closed atomic.Bool
	busy   atomic.Int64
}

func newTracker() *tracker {
	t := &tracker{open: map[io.Closer]struct{}{}}
	t.idle = sync.NewCond(&t.mu)
	return t
}

// add tracks c; false once the server is closed (the caller closes c).
func (t *tracker) add(c io.Closer) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return false
	}
	t.open[c] = struct{}{}
	return true
}

func (t *tracker) remove(c io.Closer) {
	t.mu.Lock()
	delete(t.open, c)
	t.mu.Unlock()
}

// count is the number of tracked sockets.
func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.open)
}

// enter and exit bracket a read that may block.
func (t *tracker) enter() { t.busy.Add(1) }

func (t *tracker) exit() {
	if t.busy.Add(-1) == 0 && t.closed.Load() {
		t.mu.Lock()
		t.idle.Broadcast()
		t.mu.Unlock()
	}
}

// closeAll closes every tracked socket (and refuses new ones), then waits
// until no read is blocked in them.
func (t *tracker) closeAll() {
	t.mu.Lock()
	t.closed.Store(true)
	open := make([]io.Closer, 0, len(t.open))
	for c := range t.open {
		open = append(open, c)
	}
	t.mu.Unlock()
	for _, c := range open {
		c.Close() // may call remove
	}
	t.mu.Lock()
	for t.busy.Load() > 0 {
		t.idle.Wait()
	}
	t.open = map[io.Closer]struct{}{}
	t.mu.Unlock()
}

// trackedListener is the server's TCP listener, whose accepted connections
// are tracked.
type trackedListener struct {
	net.Listener
	tracker *tracker
	screen  *screener // screens what accepted connections read, if set
	once    sync.Once
}

func (l *trackedListener) Accept() (net.Conn, error) {
	l.tracker.enter()
	c, err := l.Listener.Accept()
	l.tracker.exit()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, tracker: l.tracker}
	if !l.tracker.add(tc) {
		c.Close()
		return nil, net.ErrClosed
	}
	if l.screen != nil {
		return newScreenedConn(tc, l.screen), nil
	}
	return tc, nil
}

func (l *trackedListener) Close() error {
	l.once.Do(func() { l.tracker.remove(l) })
	return l.Listener.Close()
}

// trackedConn is a TCP connection of the server.
type trackedConn struct {
	net.Conn
	tracker *tracker
	once    sync.Once
}

func (c *trackedConn) Read(p []byte) (int, error) {
	c.tracker.enter()
	defer c.tracker.exit()
	return c.Conn.Read(p)
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.tracker.remove(c) })
	return c.Conn.Close()
}

// plainListenConn is a listening UDP socket read datagram by datagram.
type plainListenConn struct {
	*net.UDPConn
	tracker *tracker
	laddr   *net.UDPAddr
}

func newPlainListenConn(c *net.UDPConn, tr *tracker) net.PacketConn {
	return &plainListenConn{UDPConn: c, tracker: tr, laddr: localAddr16(c)}
}

// LocalAddr: see localAddr16.
func (l *plainListenConn) LocalAddr() net.Addr { return l.laddr }

// writeChannelData sends p to a client as ChannelData for num.
func (l *plainListenConn) writeChannelData(num uint16, p []byte, to netip.AddrPort) error {
	return writeChannelDataTo(l.UDPConn, num, p, to)
}

// writeChannelDataTo frames p as ChannelData in a pooled buffer and sends
// it with one sendto.
func writeChannelDataTo(c *net.UDPConn, num uint16, p []byte, to netip.AddrPort) error {
	buf := getBuf(channelDataLen(len(p)))
	defer putBuf(buf)
	_, err := c.WriteToUDPAddrPort(putChannelData(*buf, num, p), to)
	return err
}

// localAddr16 is c's local address with its IP in 16-byte form: pion/turn
// converts a listening socket's address with To16 for each datagram, which
// allocates for a 4-byte IP.
func localAddr16(c *net.UDPConn) *net.UDPAddr {
	a := *c.LocalAddr().(*net.UDPAddr)
	a.IP = a.IP.To16()
	return &a
}

func (l *plainListenConn) ReadFrom(p []byte) (int, net.Addr, error) {
	l.tracker.enter()
	defer l.tracker.exit()
	return l.UDPConn.ReadFrom(p)
}
