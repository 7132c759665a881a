package webtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deskside/deskside/agent/desktop"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/service"
	"github.com/deskside/deskside/relay/turnserver"
)

// udpProxy forwards UDP datagrams between its clients and one server
// (here a TURN server), each client through its own upstream socket, and
// can drop everything in both directions: a network blip on the media path
// while signalling (gRPC over TCP) carries on.
type udpProxy struct {
	ln      *net.UDPConn
	target  *net.UDPAddr
	blocked atomic.Bool
	dropped atomic.Int64

	mu    sync.Mutex
	ups   map[string]*net.UDPConn
	wg    sync.WaitGroup
	close sync.Once
}

func startUDPProxy(t *testing.T, target string) *udpProxy {
	t.Helper()
	ta, err := net.ResolveUDPAddr("udp4", target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &udpProxy{ln: ln, target: ta, ups: map[string]*net.UDPConn{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.stop)
	return p
}

func (p *udpProxy) addr() string { return p.ln.LocalAddr().String() }

func (p *udpProxy) serve() {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := p.ln.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if p.blocked.Load() {
			p.dropped.Add(1)
			continue
		}
		up, err := p.upstream(from)
		if err != nil {
			continue
		}
		up.Write(buf[:n])
	}
}

// upstream returns the socket that carries from's datagrams to the server
// (and the server's answers back to from).
func (p *udpProxy) upstream(from *net.UDPAddr) (*net.UDPConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if up := p.ups[from.String()]; up != nil {
		return up, nil
	}
	if p.ups == nil {
		return nil, net.ErrClosed
	}
	up, err := net.DialUDP("udp4", nil, p.target)
	if err != nil {
		return nil, err
	}
	p.ups[from.String()] = up
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			if p.blocked.Load() {
				p.dropped.Add(1)
				continue
			}
			p.ln.WriteToUDP(buf[:n], from)
		}
	}()
	return up, nil
}

func (p *udpProxy) stop() {
	p.close.Do(func() {
		p.ln.Close()
		p.mu.Lock()
		for _, up := range p.ups {
			up.Close()
		}
		p.ups = nil
		p.mu.Unlock()
		p.wg.Wait()
	})
}

// logRecorder is a slog handler that keeps the messages logged.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// TestRemoteDesktopSurvivesNetworkBlip cuts the media path of a live,
// relay-only session in Chromium for longer than ICE tolerates, while
// signalling stays up: the viewer shows that it is reconnecting, the agent
// restarts ICE (a new offer through the relay, answered by the viewer),
// and once the path is back the same session is live again and the video
// shows what the screen shows now — no new session, no click on
// Reconnect. The TURN server is the relay's own, configured as an external
// one (coturn style, shared secret) behind a UDP proxy that plays the
// network.
func TestRemoteDesktopSurvivesNetworkBlip(t *testing.T) {
	display, xc := startDesktop(t)

	secret := []byte("blip-test-turn-secret")
	ts, err := turnserver.Start(turnserver.Config{Listen: "127.0.0.1:0", PublicIP: net.IPv4(127, 0, 0, 1), Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close() })
	proxy := startUDPProxy(t, fmt.Sprintf("127.0.0.1:%d", ts.Port()))
	c := startConsoleWith(t, func(cfg *server.Config) {
		cfg.TURN = service.ExternalTURN(secret, []string{"turn:" + proxy.addr() + "?transport=udp"})
	})

	logs := &logRecorder{}
	st := c.relay.Enroll(t, "blip-desk")
	servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: staticInv{}, Health: staticHealth{}, Hostname: "blip-desk",
		Desktop: desktop.NewManager(desktop.Options{Display: display, Logger: slog.New(logs)}),
	})
	cs, ctx := c.relay.Admin(t)
	servertest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
		if err != nil || !d.GetDevice().GetOnline() {
			return fmt.Errorf("agent not online (%v)", err)
		}
		return nil
	})
	if _, err := cs.SetDevicePolicy(ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: st.DeviceID, UnattendedAllowed: true}); err != nil {
		t.Fatal(err)
	}
	c.signIn(t, "admin", servertest.AdminPassword)

	viewState := func() (string, string) {
		s := eval[map[string]string](t, c, `(() => { const e = document.querySelector('[data-testid=session-state]'); return e ? {state: e.dataset.state ?? '', text: e.textContent} : {state: 'none', text: location.hash}; })()`)
		return s["state"], s["text"]
	}
	waitState := func(want string, timeout time.Duration) {
		t.Helper()
		servertest.CheckFor(t, timeout, 100*time.Millisecond, func() error {
			if st, text := viewState(); st != want {
				return fmt.Errorf("session %s (%s), want %s", st, text, want)
			}
			return nil
		})
	}
	// showsColour waits until every quadrant of the video shows col.
	showsColour := func(col [3]uint8, timeout time.Duration) {
		t.Helper()
		servertest.CheckFor(t, timeout, 100*time.Millisecond, func() error {
			px := eval[[][]int](t, c, pixelsJS)
			for i := range px {
				if !nearColour(px[i], col) {
					return fmt.Errorf("quadrant %d is %v, want about %v", i, px[i], col)
				}
			}
			return nil
		})
	}

	c.run(t, 30*time.Second, chromedp.Navigate(c.url+"#/devices/"+st.DeviceID+"/session?relay=1"))
	waitState("live", 30*time.Second)
	servertest.CheckFor(t, 10*time.Second, 200*time.Millisecond, func() error {
		if p := eval[string](t, c, `document.querySelector('[data-testid=session-stats]').dataset.path`); p != "relay" {
			return fmt.Errorf("media path %q, want relay (through the proxied TURN server)", p)
		}
		return nil
	})
	xc.paint([3]uint8{0, 160, 0})
	showsColour([3]uint8{0, 160, 0}, 15*time.Second)

	// The blip: nothing passes the proxy until the agent has restarted ICE.
	proxy.blocked.Store(true)
	waitState("reconnecting", 30*time.Second)
	xc.paint([3]uint8{200, 0, 200}) // drawn while the path is down
	servertest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if logs.count("ICE restart") == 0 {
			return errors.New("the agent has not restarted ICE")
		}
		return nil
	})
	// The viewer applied the new offer (its stats count the restart).
	servertest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if got := eval[string](t, c, `document.querySelector('[data-testid=session-stats]').dataset.restarts`); got == "0" || got == "" {
			return fmt.Errorf("the viewer counts %q ICE restarts", got)
		}
		return nil
	})
	proxy.blocked.Store(false)
	t.Logf("blip: %d datagrams dropped; agent logged %d ICE restart(s)", proxy.dropped.Load(), logs.count("ICE restart"))

	// The same session is live again and shows the screen as it is now.
	waitState("live", 30*time.Second)
	showsColour([3]uint8{200, 0, 200}, 15*time.Second)
	xc.paint([3]uint8{0, 0, 200})
	showsColour([3]uint8{0, 0, 200}, 15*time.Second)
	if st, text := viewState(); st != "live" {
		t.Fatalf("after the blip the session is %s: %s", st, text)
	}
	// One session throughout: the audit has one start and no end.
	audit := func() (starts, ends int) {
		t.Helper()
		ev, err := cs.ListAuditEvents(ctx, &desksidev1.ListAuditEventsRequest{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ev.GetEvents() {
			switch e.GetAction() {
			case "desktop.start":
				starts++
			case "desktop.end":
				ends++
			}
		}
		return starts, ends
	}
	if starts, ends := audit(); starts != 1 || ends != 0 {
		t.Errorf("audit: %d session starts and %d ends, want 1 and 0 (the blip must not end the session)", starts, ends)
	}

	// The path goes away for good: the viewer gives up after lostAfterMs
	// (20 s) with a message and a Reconnect button, and the session ends on
	// the relay (audited) and on the agent.
	proxy.blocked.Store(true)
	c.run(t, 60*time.Second, chromedp.WaitVisible(css(`[data-testid=session-state][data-state=ended][data-end=lost]`)),
		chromedp.WaitVisible(css(`[data-testid=session-reconnect]`)))
	if _, text := viewState(); !strings.Contains(text, "did not come back") {
		t.Errorf("the lost session says %q", text)
	}
	servertest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		if _, ends := audit(); ends != 1 {
			return fmt.Errorf("%d session ends audited, want 1", ends)
		}
		if n := logs.count("desktop session ended"); n != 1 {
			return fmt.Errorf("the agent ended %d sessions, want 1", n)
		}
		return nil
	})
}
