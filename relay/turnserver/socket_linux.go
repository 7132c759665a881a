package turnserver

import (
	"context"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// listenUDPGroup opens n UDP sockets on addr's port: with n > 1, sharing it
// with SO_REUSEPORT, the kernel spreading clients over them by their address
// (a client stays on one socket, so its allocation stays with one pion/turn
// allocation manager).
func listenUDPGroup(addr string, n int) ([]*net.UDPConn, error) {
	var lc net.ListenConfig
	if n > 1 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	conns := make([]*net.UDPConn, 0, n)
	for range n {
		pc, err := lc.ListenPacket(context.Background(), "udp4", addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		conns = append(conns, pc.(*net.UDPConn))
	}
	return conns, nil
}

// setSocketBuffers sizes a UDP socket's receive and send buffers: past
// net.core.[rw]mem_max with SO_RCVBUFFORCE/SO_SNDBUFFORCE when the process
// may (CAP_NET_ADMIN), else as far as the limit allows.
func setSocketBuffers(c *net.UDPConn, size int) {
	if size <= 0 {
		return
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	var rcvErr, sndErr error
	raw.Control(func(fd uintptr) {
		// The kernel doubles the value it is given (bookkeeping overhead).
		rcvErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size/2)
		sndErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size/2)
	})
	if rcvErr != nil {
		c.SetReadBuffer(size / 2)
	}
	if sndErr != nil {
		c.SetWriteBuffer(size / 2)
	}
}

// socketBuffers returns a socket's receive and send buffer sizes as the
// kernel reports them (diagnostics, tests).
func socketBuffers(c *net.UDPConn) (rcv, snd int) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, 0
	}
	raw.Control(func(fd uintptr) {
		rcv, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		snd, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	return rcv, snd
}

// batchSize is how many datagrams one recvmmsg takes from a listening
// socket.
const batchSize = 32

// batchBufSize holds any datagram pion/turn accepts (it drops those of
// 1,600 bytes or more as truncated).
const batchBufSize = 2048

// listenConn is a listening UDP socket whose ReadFrom takes datagrams from
// the kernel in batches (recvmmsg): pion/turn reads each socket from one
// goroutine, datagram by datagram. The message headers are built once, so a
// call costs no more than a recvfrom when one datagram waits (x/net's
// ReadBatch rebuilds all of them each call: 1.8 µs more for 32 here).
type listenConn struct {
	*net.UDPConn
	raw     syscall.RawConn
	tracker *tracker
	readFn  func(fd uintptr) bool // l.recvmmsg, bound once

	mu    sync.Mutex
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // big enough for either family
	bufs  []byte
	n     int   // datagrams in hdrs
	next  int   // next to return
	err   error // of the last recvmmsg

	// addrs are the source addresses returned so far, returned again for
	// the next datagram from the same client instead of a new one (pion/turn
	// never modifies them), a bounded cache.
	addrs map[netip.AddrPort]*net.UDPAddr
	laddr *net.UDPAddr

	datagrams atomic.Int64 // read so far (tests, diagnostics)

	// snd sends what is written in batches (sender_linux.go); nil: one
	// sendto a datagram (Config.SendBatch < 0).
	snd *batchSender
	// cork holds the server's sends while this socket's batch is handled
	// (holding); nil: not held.
	cork      *sendCork
	holding   bool
	held      int // datagrams read while holding
	closeOnce sync.Once
}

// maxAddrs bounds listenConn.addrs.
const maxAddrs = 1 << 14

func newListenConn(c *net.UDPConn, tr *tracker, sc sendConfig) net.PacketConn {
	raw, err := c.SyscallConn()
	if err != nil {
		return newPlainListenConn(c, tr)
	}
	l := &listenConn{UDPConn: c, raw: raw, tracker: tr, addrs: map[netip.AddrPort]*net.UDPAddr{}, laddr: localAddr16(c),
		hdrs:  make([]unix.Mmsghdr, batchSize),
		iovs:  make([]unix.Iovec, batchSize),
		names: make([]unix.RawSockaddrInet6, batchSize),
		bufs:  make([]byte, batchSize*batchBufSize),
	}
	for i := range l.hdrs {
		l.iovs[i].Base = &l.bufs[i*batchBufSize]
		l.iovs[i].SetLen(batchBufSize)
		h := &l.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&l.names[i]))
		h.Namelen = unix.SizeofSockaddrInet6
		h.Iov = &l.iovs[i]
		h.SetIovlen(1)
	}
	l.readFn = l.recvmmsg
	if sc.batch > 0 {
		if l.snd, err = newBatchSender(c, sc.batch, sc.delay, sc.gso); err != nil {
			l.snd = nil
		} else if sc.cork != nil {
			l.cork, l.snd.cork = sc.cork, sc.cork
			sc.cork.senders = append(sc.cork.senders, l.snd)
		}
	}
	return l
}

// WriteTo queues p for the batching sender, or sends it at once without
// one.
func (l *listenConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if l.snd == nil {
		return l.UDPConn.WriteTo(p, addr)
	}
	return l.snd.WriteTo(p, addr)
}

// writeChannelData queues p for a client as ChannelData for num.
func (l *listenConn) writeChannelData(num uint16, p []byte, to netip.AddrPort) error {
	if l.snd == nil {
		return writeChannelDataTo(l.UDPConn, num, p, to)
	}
	return l.snd.writeChannelData(num, p, to)
}

// Close closes the socket and returns once the sender goroutine has ended.
func (l *listenConn) Close() error {
	var err error
	l.closeOnce.Do(func() {
		if l.snd != nil {
			l.snd.Close()
		}
		err = l.UDPConn.Close()
		if l.snd != nil {
			<-l.snd.done
		}
	})
	return err
}

// unhold ends the reader's hold: the sends go.
func (l *listenConn) unhold() {
	l.holding = false
	l.cork.release()
}

// recvmmsg is called by raw.Read with the socket; false means "wait until
// it is readable".
func (l *listenConn) recvmmsg(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&l.hdrs[0])), uintptr(len(l.hdrs)),
			unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			l.n, l.err = int(n), nil
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if l.holding {
				// Nothing more waits: send what the reads so far produced
				// before the reader sleeps.
				l.unhold()
			}
			return false
		default:
			l.n, l.err = 0, os.NewSyscallError("recvmmsg", errno)
			return true
		}
	}
}

func (l *listenConn) ReadFrom(p []byte) (int, net.Addr, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		for l.next >= l.n {
			if l.holding && l.held >= batchSize {
				// A batch's worth is handled: send what it produced before
				// reading more.
				l.unhold()
			}
			// The kernel set the name lengths of what it filled last.
			for i := range l.n {
				l.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
			}
			l.n, l.next = 0, 0
			l.tracker.enter()
			err := l.raw.Read(l.readFn)
			l.tracker.exit()
			if err == nil {
				err = l.err
			}
			if err != nil {
				if l.holding {
					l.unhold()
				}
				return 0, nil, err
			}
			l.datagrams.Add(int64(l.n))
			if l.cork != nil && l.n > 0 {
				if !l.holding {
					l.cork.hold()
					l.holding, l.held = true, 0
				}
				l.held += l.n
			}
		}
		i := l.next
		l.next++
		ap, ok := sockaddrToAddrPort(&l.names[i])
		if !ok {
			continue // not an address family of UDP: cannot happen
		}
		from := l.addrs[ap]
		if from == nil {
			if len(l.addrs) >= maxAddrs {
				clear(l.addrs)
			}
			from = net.UDPAddrFromAddrPort(ap)
			if ap.Addr().Is4() {
				from.IP = from.IP.To16() // as net returns it, and To16 then costs nothing
			}
			l.addrs[ap] = from
		}
		n := min(int(l.hdrs[i].Len), batchBufSize)
		return copy(p, l.bufs[i*batchBufSize:i*batchBufSize+n]), from, nil
	}
}

// LocalAddr is the socket's address, its IP in 16-byte form: pion/turn
// converts it with To16 for each datagram.
func (l *listenConn) LocalAddr() net.Addr { return l.laddr }

// sockaddrToAddrPort converts the source address recvmmsg filled in.
func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) (netip.AddrPort, bool) {
	port := func(p *uint16) uint16 { // network byte order
		b := (*[2]byte)(unsafe.Pointer(p))
		return uint16(b[0])<<8 | uint16(b[1])
	}
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port(&sa4.Port)), true
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port(&sa.Port)), true
	}
	return netip.AddrPort{}, false
}

// sendStats sums the batching senders' counters (Stats).
func sendStats(conns []net.PacketConn) (datagrams, batches, gso, errs int64) {
	for _, c := range conns {
		if l, ok := c.(*listenConn); ok && l.snd != nil {
			datagrams += l.snd.datagrams.Load()
			batches += l.snd.batches.Load()
			gso += l.snd.gsoMessages.Load()
			errs += l.snd.errs.Load()
		}
	}
	return
}
