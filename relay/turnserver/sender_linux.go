package turnserver

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file holds the batching send path of the listening UDP sockets:
// what pion/turn writes to clients (above all the relayed data, ChannelData
// and Data indications) is copied into a batch, which is sent with one
// sendmmsg:
//
//   - when the socket is busy (more than sendBusyRate datagrams a second
//     over the last sendRateWindow), one goroutine a socket sends each
//     batch once it is full (Config.SendBatch) or SendDelay has passed
//     since its first datagram;
//   - otherwise, and always with SendDelay < 0, the writer that finds no
//     send under way sends what is queued itself, its own datagram
//     included, and goes on while others queue more meanwhile: a quiet
//     socket sends each datagram at once, as with sendto, with no goroutine
//     to wake and no wait (a wake-up a datagram cost more than the send
//     saved: 180 flows/core at 20 flows without batches, 112 with the
//     delay alone).
//
// While a listening socket's reader handles what it read, every socket's
// sends are held (sendCork): what is written meanwhile (above all the
// ChannelData it relays between allocations, in its own goroutine) is only
// queued, and the reader sends it with one sendmmsg once nothing more waits
// to be read (before it sleeps) or once it has handled a batch's worth
// (batchSize) since the hold began. So the datagrams that came together
// leave in one system call, a frame's packets to one client as one GSO
// message even when they came in two reads, with no goroutine to wake and
// no delay beyond their handling; a held batch that fills is sent at once.
//
// Order is kept per destination (one goroutine sends the batches in the
// order they were filled, and a GSO message holds datagrams in the order
// written). A send error (an unreachable or refused destination, a
// datagram too large) drops that datagram and is counted; the rest of the
// batch is sent. A full socket send buffer waits for room, as a blocking
// write would.

// sendSlot is the room for one datagram in a batch; pion/turn writes at
// most its 1,600-byte MTU plus a ChannelData header. Larger datagrams get
// a buffer of their own.
const sendSlot = 2048

// gsoMaxSegments and gsoMaxBytes bound one GSO message (the kernel's
// UDP_MAX_SEGMENTS and a datagram's maximum payload).
const (
	gsoMaxSegments = 64
	gsoMaxBytes    = 65507
)

// sendBatch is datagrams waiting to be sent.
type sendBatch struct {
	n    int
	slab []byte
	bufs [][]byte // datagram i, in slab unless larger than sendSlot
	dsts []netip.AddrPort
}

func newSendBatch(max int) *sendBatch {
	return &sendBatch{slab: make([]byte, max*sendSlot), bufs: make([][]byte, max), dsts: make([]netip.AddrPort, max)}
}

// add appends p for dst, framed as ChannelData for channel ch unless ch
// is negative; the batch is not full.
func (b *sendBatch) add(ch int, p []byte, dst netip.AddrPort) {
	i := b.n
	n := len(p)
	if ch >= 0 {
		n = channelDataLen(len(p))
	}
	if n <= sendSlot {
		b.bufs[i] = b.slab[i*sendSlot : i*sendSlot+n]
	} else {
		b.bufs[i] = make([]byte, n)
	}
	if ch >= 0 {
		putChannelData(b.bufs[i], uint16(ch), p)
	} else {
		copy(b.bufs[i], p)
	}
	b.dsts[i] = dst
	b.n++
}

// batchSender sends what is written to one UDP socket in batches.
type batchSender struct {
	raw   syscall.RawConn
	max   int
	delay time.Duration
	v4    bool // the socket is IPv4-only: IPv4-mapped destinations are sent as IPv4
	gso   atomic.Bool

	mu      sync.Mutex
	freed   *sync.Cond // a batch was returned to free, or closed
	cur     *sendBatch // being filled
	queue   []*sendBatch
	free    []*sendBatch
	closed  bool
	inline  bool // no sender goroutine: writers always send (delay 0)
	sending bool // a send is under way (by a writer or the sender goroutine)
	// The datagram rate: written in the window from winStart; busy if the
	// previous window's rate was over sendBusyRate.
	winStart time.Time
	winCount int
	busy     bool
	// cork holds sends while a reader handles a batch; nil: never held.
	cork *sendCork
	// alwaysBusy uses the delay whatever the rate (tests).
	alwaysBusy bool
	kick       chan struct{} // wakes the sender goroutine; one token at most
	done       chan struct{} // closed when the sender goroutine has ended

	// The sender goroutine's own: message headers, I/O vectors, control
	// messages and addresses for one sendmmsg, built once.
	hdrs   []unix.Mmsghdr
	iovs   []unix.Iovec
	oobs   []byte
	names  []unix.RawSockaddrInet6
	first  []int // first datagram of message i
	groups []gsoGroup
	next   []int // next datagram in its GSO group, -1 for none
	msgs   int   // messages built
	sent   int   // messages sent of msgs
	serr   error // why sendmmsg stopped at message sent
	sendFn func(fd uintptr) bool

	// Counters (tests, diagnostics).
	datagrams, batches, gsoMessages, errs atomic.Int64
}

// gsoGroup is a run of datagrams for one destination that go as one
// message.
type gsoGroup struct {
	dst        netip.AddrPort
	head, tail int // first and last datagram
	seg, count int
	bytes      int
	open       bool
}

// sendRateWindow and sendBusyRate decide when a socket is busy enough for
// the delay: 2,000 datagrams a second is 16 flows of 1 Mbit/s.
const (
	sendRateWindow = 20 * time.Millisecond
	sendBusyRate   = 2000
	sendBusyCount  = sendBusyRate * int(sendRateWindow) / int(time.Second)
)

// cmsgSpace is the control-message room of one message (UDP_SEGMENT).
var cmsgSpace = unix.CmsgSpace(2)

func newBatchSender(c *net.UDPConn, max int, delay time.Duration, gso bool) (*batchSender, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &batchSender{raw: raw, max: max, delay: delay, kick: make(chan struct{}, 1), done: make(chan struct{}),
		hdrs:  make([]unix.Mmsghdr, max),
		iovs:  make([]unix.Iovec, max),
		oobs:  make([]byte, max*cmsgSpace),
		names: make([]unix.RawSockaddrInet6, max),
		first: make([]int, max),
		next:  make([]int, max),
	}
	if la, ok := c.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
		s.v4 = true
	}
	s.freed = sync.NewCond(&s.mu)
	for range 3 {
		s.free = append(s.free, newSendBatch(max))
	}
	if gso {
		s.gso.Store(gsoSupported(raw))
	}
	s.sendFn = s.sendmmsg
	if delay <= 0 {
		s.inline = true
		close(s.done)
		return s, nil
	}
	go s.run()
	return s, nil
}

// gsoSupported reports whether the kernel knows UDP_SEGMENT.
func gsoSupported(raw syscall.RawConn) bool {
	var err error
	if cerr := raw.Control(func(fd uintptr) {
		_, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	}); cerr != nil {
		return false
	}
	return err == nil
}

// errAddress refuses a destination that is not a UDP address.
var errAddress = errors.New("turnserver: not a UDP address")

// WriteTo queues p for addr and returns; p may be reused at once. It waits
// only when every batch is waiting to be sent.
func (s *batchSender) WriteTo(p []byte, addr net.Addr) (int, error) {
	var dst netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: errAddress}
		}
		dst = netip.AddrPortFrom(ip, uint16(a.Port))
	default:
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: errAddress}
	}
	if _, err := s.queue1(-1, p, dst); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeChannelData queues p for to as ChannelData for num.
func (s *batchSender) writeChannelData(num uint16, p []byte, to netip.AddrPort) error {
	_, err := s.queue1(int(num), p, to)
	return err
}

// queue1 queues p for dst (as ChannelData for ch unless ch < 0), and sends
// what is queued if it is the writer to do so.
func (s *batchSender) queue1(ch int, p []byte, dst netip.AddrPort) (int, error) {
	if s.v4 {
		dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	}
	s.mu.Lock()
	for s.cur == nil && !s.closed {
		if n := len(s.free); n > 0 {
			s.cur = s.free[n-1]
			s.free = s.free[:n-1]
			break
		}
		s.freed.Wait()
	}
	if s.closed {
		s.mu.Unlock()
		return 0, net.ErrClosed
	}
	s.cur.add(ch, p, dst)
	if !s.inline {
		now := time.Now()
		if d := now.Sub(s.winStart); d >= sendRateWindow {
			s.busy = d < 2*sendRateWindow && s.winCount >= sendBusyCount
			s.winStart, s.winCount = now, 0
		}
		s.winCount++
	}
	held := s.cork != nil && s.cork.readers.Load() > 0
	if held || s.inline || !(s.busy || s.alwaysBusy) {
		full := s.cur.n == s.max
		if s.sending || held && !full {
			// The sender under way takes it before it stops, or the
			// holding reader sends it once it has handled its batch
			// (sendCork.release).
			if full {
				s.queue = append(s.queue, s.cur)
				s.cur = nil
			}
			s.mu.Unlock()
			return len(p), nil
		}
		s.sending = true
		s.sendQueued() // unlocks s.mu
		return len(p), nil
	}
	wake := s.cur.n == 1
	if s.cur.n == s.max {
		s.queue = append(s.queue, s.cur)
		s.cur = nil
		wake = true
	}
	s.mu.Unlock()
	if wake {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// flush sends what is queued unless a send is under way (which takes it
// before it stops).
func (s *batchSender) flush() {
	s.mu.Lock()
	if s.sending || (len(s.queue) == 0 && (s.cur == nil || s.cur.n == 0)) {
		s.mu.Unlock()
		return
	}
	s.sending = true
	s.sendQueued() // unlocks s.mu
}

// sendCork holds the sends of a server's listening sockets while any of
// their readers handles the datagrams of one read (see the top of this
// file).
type sendCork struct {
	readers atomic.Int32 // readers handling a batch
	senders []*batchSender
}

// hold is called by a reader that has read a batch.
func (c *sendCork) hold() { c.readers.Add(1) }

// release is called by the reader once it has handled its batch, before it
// reads again: it sends what every socket holds, its own batch's datagrams
// and what others wrote meanwhile (so a datagram waits at most for one
// reader's batch, even while other readers hold).
func (c *sendCork) release() {
	c.readers.Add(-1)
	for _, s := range c.senders {
		s.flush()
	}
}

// Close stops taking datagrams; what is queued is still sent (or fails once
// the socket is closed). It does not wait for the sender goroutine.
func (s *batchSender) Close() {
	s.mu.Lock()
	s.closed = true
	s.freed.Broadcast()
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// sendQueued sends what is queued until nothing is; s.mu is held and
// s.sending set by the caller; it returns with s.mu unlocked.
func (s *batchSender) sendQueued() {
	var q []*sendBatch
	for {
		if s.cur != nil && s.cur.n > 0 {
			s.queue = append(s.queue, s.cur)
			s.cur = nil
		}
		if len(s.queue) == 0 {
			s.sending = false
			s.mu.Unlock()
			return
		}
		q, s.queue = s.queue, q[:0]
		s.mu.Unlock()
		for _, b := range q {
			s.send(b)
		}
		s.mu.Lock()
		for _, b := range q {
			b.n = 0
			s.free = append(s.free, b)
		}
		s.freed.Broadcast()
	}
}

// run is the sender goroutine.
func (s *batchSender) run() {
	defer close(s.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		<-s.kick
		s.mu.Lock()
		if s.delay > 0 && len(s.queue) == 0 && !s.closed && s.cur != nil && s.cur.n > 0 {
			// Let more join the batch, unless it fills up first.
			s.mu.Unlock()
			timer.Reset(s.delay)
			select {
			case <-timer.C:
			case <-s.kick:
				timer.Stop()
			}
			s.mu.Lock()
		}
		if s.sending {
			// A writer sends, and takes what is queued before it stops.
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return
			}
			continue
		}
		s.sending = true
		closed := s.closed
		s.sendQueued() // unlocks s.mu
		if closed {
			return
		}
	}
}

// send sends a batch, skipping datagrams the kernel refuses.
func (s *batchSender) send(b *sendBatch) {
	s.batches.Add(1)
	s.datagrams.Add(int64(b.n))
	from := 0
	for from < b.n {
		gso := s.gso.Load()
		s.build(b, from, gso)
		s.sent = 0
		for s.sent < s.msgs {
			s.serr = nil
			if err := s.raw.Write(s.sendFn); err != nil {
				// The socket is closed: drop the rest.
				s.errs.Add(int64(b.n - s.first[s.sent]))
				return
			}
			if s.serr == nil {
				continue
			}
			m := s.sent
			if gso && s.hdrs[m].Hdr.Controllen != 0 && errors.Is(s.serr, unix.EIO) {
				// The device cannot segment (no checksum offload): send
				// without GSO from here on.
				s.gso.Store(false)
				break
			}
			s.errs.Add(int64(s.count(m)))
			s.sent++
		}
		if s.sent >= s.msgs {
			return
		}
		// GSO was turned off: rebuild from the message that failed.
		from = s.first[s.sent]
	}
}

// count is how many datagrams message m holds.
func (s *batchSender) count(m int) int {
	return int(s.hdrs[m].Hdr.Iovlen)
}

// sendmmsg is called by raw.Write with the socket: it sends messages from
// s.sent on, stopping at the first the kernel refuses (s.serr). false
// means "wait until the socket is writable".
func (s *batchSender) sendmmsg(fd uintptr) bool {
	for s.sent < s.msgs {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[s.sent])), uintptr(s.msgs-s.sent),
			unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			s.sent += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			s.serr = os.NewSyscallError("sendmmsg", errno)
			return true
		}
	}
	return true
}

// build lays out datagrams from on of b as messages: one a datagram, or
// with gso one a run of datagrams for one destination.
func (s *batchSender) build(b *sendBatch, from int, gso bool) {
	s.groups = s.groups[:0]
	for i := from; i < b.n; i++ {
		s.next[i] = -1
		l := len(b.bufs[i])
		joined := false
		if gso && l > 0 {
			for g := range s.groups {
				gr := &s.groups[g]
				if !gr.open || gr.dst != b.dsts[i] {
					continue
				}
				if l > gr.seg || gr.count == gsoMaxSegments || gr.bytes+l > gsoMaxBytes {
					gr.open = false // a later datagram for it starts a new run
					break
				}
				s.next[gr.tail] = i
				gr.tail = i
				gr.count++
				gr.bytes += l
				gr.open = l == gr.seg // a shorter one ends the run
				joined = true
				break
			}
		}
		if !joined {
			s.groups = append(s.groups, gsoGroup{dst: b.dsts[i], head: i, tail: i, seg: l, count: 1, bytes: l, open: gso && l > 0})
		}
	}
	iov := 0
	for m, gr := range s.groups {
		s.first[m] = gr.head
		h := &s.hdrs[m].Hdr
		h.Iov = &s.iovs[iov]
		for i := gr.head; i >= 0; i = s.next[i] {
			v := &s.iovs[iov]
			if len(b.bufs[i]) > 0 {
				v.Base = &b.bufs[i][0]
			} else {
				v.Base = nil
			}
			v.SetLen(len(b.bufs[i]))
			iov++
		}
		h.SetIovlen(gr.count)
		h.Namelen = putSockaddr(&s.names[m], gr.dst)
		h.Name = (*byte)(unsafe.Pointer(&s.names[m]))
		if gr.count > 1 {
			oob := s.oobs[m*cmsgSpace : (m+1)*cmsgSpace]
			ch := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
			ch.Level = unix.IPPROTO_UDP
			ch.Type = unix.UDP_SEGMENT
			ch.SetLen(unix.CmsgLen(2))
			*(*uint16)(unsafe.Pointer(&oob[unix.CmsgLen(0)])) = uint16(gr.seg)
			h.Control = &oob[0]
			h.SetControllen(cmsgSpace)
			s.gsoMessages.Add(1)
		} else {
			h.Control = nil
			h.SetControllen(0)
		}
	}
	s.msgs = len(s.groups)
}

// putSockaddr writes ap as a sockaddr and returns its length.
func putSockaddr(sa *unix.RawSockaddrInet6, ap netip.AddrPort) uint32 {
	port := ap.Port()
	if ap.Addr().Is4() {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ap.Addr().As4()}
		p := (*[2]byte)(unsafe.Pointer(&sa4.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ap.Addr().As16()}
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	return unix.SizeofSockaddrInet6
}
