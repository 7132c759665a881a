package turnserver

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// senderModes are the batching sender's ways of sending, each tested.
var senderModes = []struct {
	name  string
	delay time.Duration
	busy  bool // as on a busy socket: always the delay
	gso   bool
}{
	{"delay-gso", DefaultSendDelay, true, true},
	{"delay-no-gso", DefaultSendDelay, true, false},
	{"adaptive-gso", DefaultSendDelay, false, true},
	{"inline-gso", 0, false, true},
	{"inline-no-gso", 0, false, false},
}

// TestBatchSenderOrderAndErrors: many goroutines write through one
// batching sender, each to its own receiver, datagrams of varying sizes
// (runs of equal ones, for GSO) interleaved with datagrams to a destination
// the kernel refuses (an IPv6 address from an IPv4 socket). Every receiver gets
// every datagram, in order and intact; the refused ones are counted and
// hold up nothing.
func TestBatchSenderOrderAndErrors(t *testing.T) {
	for _, m := range senderModes {
		t.Run(m.name, func(t *testing.T) {
			c, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := newBatchSender(c.(*net.UDPConn), 16, m.delay, m.gso)
			if err != nil {
				t.Fatal(err)
			}
			s.alwaysBusy = m.busy
			defer func() { s.Close(); <-s.done }()

			const flows, perFlow = 12, 200
			refused := &net.UDPAddr{IP: net.IPv6loopback, Port: 9}
			var rx []net.PacketConn
			for range flows {
				r, err := net.ListenPacket("udp4", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				r.(*net.UDPConn).SetReadBuffer(1 << 20)
				defer r.Close()
				rx = append(rx, r)
			}
			// size of datagram i of a flow: runs of 5 of one size, then a
			// shorter one (which may end a GSO run).
			size := func(f, i int) int {
				if i%6 == 5 {
					return 16 + f
				}
				return 100 + 20*((i/6)%4)
			}
			errs := make(chan error, flows)
			var readers sync.WaitGroup
			for f, r := range rx {
				readers.Add(1)
				go func() {
					defer readers.Done()
					buf := make([]byte, 2048)
					for i := range perFlow {
						r.SetReadDeadline(time.Now().Add(waitLimit))
						n, _, err := r.ReadFrom(buf)
						if err != nil {
							errs <- fmt.Errorf("flow %d: datagram %d: %v", f, i, err)
							return
						}
						seq := int(binary.BigEndian.Uint32(buf))
						if seq != i || n != size(f, i) || int(buf[4]) != f {
							errs <- fmt.Errorf("flow %d: got datagram %d of %d bytes from flow %d, want %d of %d bytes",
								f, seq, n, buf[4], i, size(f, i))
							return
						}
					}
				}()
			}
			var writers sync.WaitGroup
			for f, r := range rx {
				writers.Add(1)
				go func() {
					defer writers.Done()
					p := make([]byte, 2048)
					for i := range perFlow {
						binary.BigEndian.PutUint32(p, uint32(i))
						p[4] = byte(f)
						if _, err := s.WriteTo(p[:size(f, i)], r.LocalAddr()); err != nil {
							errs <- err
							return
						}
						if f%3 == 0 && i%10 == 0 {
							s.WriteTo(p[:size(f, i)], refused)
						}
						if i%50 == 49 {
							time.Sleep(time.Millisecond) // let the receivers keep up
						}
					}
				}()
			}
			writers.Wait()
			readers.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			wantRefused := int64(len(rx)/3) * perFlow / 10
			deadline := time.Now().Add(waitLimit)
			for s.errs.Load() < wantRefused && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if got := s.errs.Load(); got != wantRefused {
				t.Errorf("%d datagrams refused, want %d", got, wantRefused)
			}
			if s.datagrams.Load() != int64(flows*perFlow)+wantRefused {
				t.Errorf("%d datagrams sent, want %d", s.datagrams.Load(), flows*perFlow+int(wantRefused))
			}
			t.Logf("%d datagrams in %d batches, %d GSO messages", s.datagrams.Load(), s.batches.Load(), s.gsoMessages.Load())
		})
	}
}

// TestBatchSenderGSO: a full batch of equal datagrams for one client goes
// as one GSO message where the kernel offers UDP_SEGMENT, and arrives as
// separate datagrams; a shorter one ends the run.
func TestBatchSenderGSO(t *testing.T) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A delay that never passes: batches go when full.
	s, err := newBatchSender(c.(*net.UDPConn), 8, time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	s.alwaysBusy = true
	defer func() { s.Close(); <-s.done }()
	if !s.gso.Load() {
		t.Skip("the kernel has no UDP GSO (UDP_SEGMENT): batches go datagram by datagram, as TestBatchSenderOrderAndErrors checks")
	}
	r, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sizes := []int{500, 500, 500, 500, 500, 200, 500, 500}
	for i, n := range sizes {
		p := make([]byte, n)
		p[0] = byte(i)
		s.WriteTo(p, r.LocalAddr())
	}
	buf := make([]byte, 2048)
	for i, want := range sizes {
		r.SetReadDeadline(time.Now().Add(waitLimit))
		n, _, err := r.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n != want || int(buf[0]) != i {
			t.Fatalf("datagram %d: got #%d of %d bytes, want #%d of %d", i, buf[0], n, i, want)
		}
	}
	// Two messages: the run of six ending with the short one, then two.
	if got := s.gsoMessages.Load(); got != 2 {
		t.Errorf("%d GSO messages, want 2", got)
	}
	if got := s.batches.Load(); got != 1 {
		t.Errorf("%d batches, want 1", got)
	}
}

// TestBatchSenderClosed: writes after Close are refused, and Close does
// not wait for a writer blocked on a full queue forever.
func TestBatchSenderClosed(t *testing.T) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := newBatchSender(c.(*net.UDPConn), 4, time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	<-s.done
	if _, err := s.WriteTo([]byte("x"), c.LocalAddr()); err == nil {
		t.Error("write after Close accepted")
	}
	if _, err := s.WriteTo([]byte("x"), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}); err == nil {
		t.Error("write to a TCP address accepted")
	}
}

// TestBatchSenderHold: while a reader holds the sends (sendCork), what is
// written to any of the senders sharing the cork is only queued, unless a
// batch fills, which goes at once; release sends the rest, a run for one
// client as one GSO message where the kernel has it, also what another
// reader still holding wrote. Everything arrives, in order.
func TestBatchSenderHold(t *testing.T) {
	cork := &sendCork{}
	var senders []*batchSender
	for range 2 {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := newBatchSender(c.(*net.UDPConn), 8, DefaultSendDelay, true)
		if err != nil {
			t.Fatal(err)
		}
		s.cork = cork
		cork.senders = append(cork.senders, s)
		senders = append(senders, s)
		defer func() { s.Close(); <-s.done }()
	}
	var rx []net.PacketConn
	for range 2 {
		r, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rx = append(rx, r)
	}
	next := make([]int, len(rx)) // next datagram number each receiver expects
	expect := func(r, n int) {
		t.Helper()
		buf := make([]byte, 2048)
		for range n {
			rx[r].SetReadDeadline(time.Now().Add(waitLimit))
			k, _, err := rx[r].ReadFrom(buf)
			if err != nil {
				t.Fatalf("receiver %d, datagram %d: %v", r, next[r], err)
			}
			if got := int(binary.BigEndian.Uint32(buf)); got != next[r] || k != 500 {
				t.Fatalf("receiver %d: got datagram %d of %d bytes, want %d of 500", r, got, k, next[r])
			}
			next[r]++
		}
	}
	sent := make([]int, len(rx))
	write := func(s *batchSender, r, n int) {
		t.Helper()
		p := make([]byte, 500)
		for range n {
			binary.BigEndian.PutUint32(p, uint32(sent[r]))
			sent[r]++
			if _, err := s.WriteTo(p, rx[r].LocalAddr()); err != nil {
				t.Fatal(err)
			}
		}
	}
	batches := func() (n int64) {
		for _, s := range senders {
			n += s.batches.Load()
		}
		return n
	}

	// Two readers hold; the first writes five for receiver 0 through
	// sender 0, the second three for receiver 1 through sender 1.
	cork.hold()
	cork.hold()
	write(senders[0], 0, 5)
	write(senders[1], 1, 3)
	if b := batches(); b != 0 {
		t.Fatalf("%d batches sent while held, want 0", b)
	}
	// The first reader is done: both senders send, the second reader's
	// datagrams too.
	cork.release()
	expect(0, 5)
	expect(1, 3)
	if b := batches(); b != 2 {
		t.Errorf("%d batches after the release, want 2 (one a sender)", b)
	}
	if senders[0].gso.Load() && senders[0].gsoMessages.Load() != 1 {
		t.Errorf("%d GSO messages for the run of five, want 1", senders[0].gsoMessages.Load())
	}
	// Still held by the second reader: a batch that fills (8) goes at
	// once, the rest at the release.
	write(senders[0], 0, 11)
	expect(0, 8)
	if b := senders[0].batches.Load(); b != 2 {
		t.Errorf("sender 0: %d batches once a held batch filled, want 2", b)
	}
	cork.release()
	expect(0, 3)
	if cork.readers.Load() != 0 {
		t.Errorf("%d readers hold after both released", cork.readers.Load())
	}
	// Not held: a write on a quiet socket goes at once.
	write(senders[1], 1, 1)
	expect(1, 1)
}
