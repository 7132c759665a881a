package server_test

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// cutProxy forwards TCP to a target and can cut every connection with a
// reset, the way a peer vanishes when its machine loses power or network.
type cutProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	conns  []*net.TCPConn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l, target: target}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c.(*net.TCPConn), u.(*net.TCPConn))
			p.mu.Unlock()
			go io.Copy(u, c)
			go io.Copy(c, u)
		}
	}()
	t.Cleanup(func() { l.Close(); p.cut() })
	return p
}

func (p *cutProxy) addr() string { return p.l.Addr().String() }

// cut resets every connection (SO_LINGER 0: RST, no FIN, no goodbye).
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.SetLinger(0)
		c.Close()
	}
	p.conns = nil
}

func TestAgentVanishesMidStream(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	st := r.mustEnroll(t)
	p := newCutProxy(t, r.addr)
	st.Relay = p.addr() // the agent reaches the relay through the proxy
	a := runAgent(t, st, agentOpts{interval: 50 * time.Millisecond})
	cs, ctx := r.admin(t)
	online := func(want bool) func() error {
		return func() error {
			d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
			if err != nil {
				return err
			}
			if d.GetDevice().GetOnline() != want {
				return errNotYet
			}
			return nil
		}
	}
	checkFor(t, 10*time.Second, 10*time.Millisecond, online(true))
	for range 3 {
		p.cut()
		// The relay sees the reset, marks the device offline and frees the
		// stream; the agent comes back by itself.
		checkFor(t, 10*time.Second, 5*time.Millisecond, func() error {
			if a.link.Connected() {
				return errNotYet
			}
			return nil
		})
		checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if !a.link.Connected() {
				return errNotYet
			}
			return online(true)()
		})
	}
	a.cancel()
	<-a.done
	a.done <- nil
	pts, err := r.srv.Store().HealthRange(ctx, st.DeviceID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// At least once: every sample that left the spool was stored; some still
	// spooled may be stored too (sent, but the ack was lost with the link).
	if issued, stored, spooled := a.spool.Issued(), uint64(len(pts)), uint64(a.spool.Len()); stored+spooled < issued || stored > issued {
		t.Fatalf("took %d samples, stored %d, spooled %d: samples were lost", issued, stored, spooled)
	}
	checkFor(t, 10*time.Second, 10*time.Millisecond, online(false))
}
