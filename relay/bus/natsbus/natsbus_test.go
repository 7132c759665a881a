package natsbus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/bus"
	"github.com/deskside/deskside/relay/bus/natsbus/natstest"
)

// These tests need a NATS server: 127.0.0.1:4222, or DESKSIDE_TEST_NATS.
// Without one they skip, except under CI=true where they fail; under -short
// they skip. FuzzFrame and TestSeedCorpus need no server.
// DESKSIDE_TEST_LOG=1 shows the buses' logs.

// wait bounds every wait in these tests; it only keeps a broken test
// from hanging, nothing is asserted about how long things take.
const wait = 20 * time.Second

// needNATS skips or fails t when the test NATS is unreachable.
func needNATS(t testing.TB) { natstest.URL(t) }

func testURL() string { return cmp.Or(os.Getenv("DESKSIDE_TEST_NATS"), natstest.DefaultURL) }

func testLogger() *slog.Logger {
	if os.Getenv("DESKSIDE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func newPrefix() string { return natstest.Prefix() }

// openAt opens a Bus ("a relay") with its own connection.
func openAt(t testing.TB, natsURL, prefix string, opts ...Option) *Bus {
	t.Helper()
	needNATS(t)
	b, err := Open(natsURL, prefix, testLogger(), opts...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// relays opens two buses sharing a fresh prefix.
func relays(t testing.TB, opts ...Option) (a, b *Bus) {
	p := newPrefix()
	return openAt(t, testURL(), p, opts...), openAt(t, testURL(), p, opts...)
}

func tagged(s string) *desksidev1.AgentMessage {
	return &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Error{Error: &desksidev1.RequestError{Message: s}}}
}

func output(seq uint64, data []byte) *desksidev1.AgentMessage {
	return &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_CommandOutput{CommandOutput: &desksidev1.CommandOutput{Seq: seq, Data: data}}}
}

func exit() *desksidev1.AgentMessage {
	return &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_CommandExit{CommandExit: &desksidev1.CommandExit{}}}
}

// replyWith answers every request with tag and then, like the relay's
// agent exchange, waits for more until ctx ends.
func replyWith(tag string) bus.Handler {
	return func(ctx context.Context, _ *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
		if recv(tagged(tag)) {
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	}
}

func inventoryReq() *desksidev1.RelayMessage {
	return &desksidev1.RelayMessage{Id: 7, Body: &desksidev1.RelayMessage_CollectInventory{CollectInventory: &desksidev1.CollectInventory{}}}
}

func request(t testing.TB, b bus.Bus, dev string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	m, err := bus.Request(ctx, b, dev, inventoryReq())
	return m.GetError().GetMessage(), err
}

func mustAnswer(t testing.TB, b bus.Bus, dev, want string) {
	t.Helper()
	got, err := request(t, b, dev)
	if err != nil || got != want {
		t.Fatalf("request %s: got %q, %v; want %q", dev, got, err, want)
	}
}

// eventually polls f until it is true, failing after wait.
func eventually(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitFor(t testing.TB, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestRequestAcrossRelays(t *testing.T) {
	testkit.CheckGoroutines(t)
	a, b := relays(t)
	for _, dev := range []string{"dev-0123456789abcdef0123", "odd id/with.dots*and>more", "ü"} {
		stop, err := a.Serve(dev, func(_ context.Context, req *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
			if req.GetId() != 7 || req.GetCollectInventory() == nil {
				recv(tagged(fmt.Sprintf("wrong request %v", req)))
				return nil
			}
			recv(tagged("inventory of " + dev))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		mustAnswer(t, b, dev, "inventory of "+dev) // across relays
		mustAnswer(t, a, dev, "inventory of "+dev) // its own relay
		stop()
	}
}

func TestNoRoute(t *testing.T) {
	testkit.CheckGoroutines(t)
	a, b := relays(t)
	if _, err := request(t, b, "dev-nobody"); !errors.Is(err, bus.ErrNoRoute) {
		t.Fatalf("unserved device: %v, want ErrNoRoute", err)
	}
	stop, _ := a.Serve("dev-1", replyWith("x"))
	mustAnswer(t, b, "dev-1", "x")
	stop()
	stop() // twice is harmless
	if _, err := request(t, b, "dev-1"); !errors.Is(err, bus.ErrNoRoute) {
		t.Fatalf("after stop: %v, want ErrNoRoute", err)
	}
	if _, err := request(t, a, "dev-1"); !errors.Is(err, bus.ErrNoRoute) {
		t.Fatalf("after stop, same relay: %v, want ErrNoRoute", err)
	}
}

func TestStreamInOrder(t *testing.T) {
	testkit.CheckGoroutines(t)
	a, b := relays(t, WithWindow(8, 64<<10)) // small window: flow control matters
	const n = 2000
	cancelled := make(chan struct{})
	a.Serve("dev-1", func(ctx context.Context, _ *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
		data := make([]byte, 1000)
		for i := uint64(1); i <= n; i++ {
			if recv(output(i, data)) {
				return nil
			}
		}
		recv(exit())
		<-ctx.Done() // the caller's done must end the exchange
		close(cancelled)
		return ctx.Err()
	})
	var got uint64
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := b.Stream(ctx, "dev-1", inventoryReq(), func(m *desksidev1.AgentMessage) bool {
		if m.GetCommandExit() != nil {
			return true
		}
		got++
		if s := m.GetCommandOutput().GetSeq(); s != got {
			t.Errorf("reply %d has seq %d", got, s)
		}
		if got%200 == 0 {
			time.Sleep(5 * time.Millisecond) // a slow console now and then
		}
		return false
	})
	if err != nil || got != n {
		t.Fatalf("stream: %v after %d of %d replies", err, got, n)
	}
	waitFor(t, "the handler's context to end after done", cancelled)
}

func TestHandlerEndsStream(t *testing.T) {
	testkit.CheckGoroutines(t)
	a, b := relays(t)
	a.Serve("dev-ok", func(_ context.Context, _ *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
		for i := uint64(1); i <= 3; i++ {
			recv(output(i, nil))
		}
		return nil
	})
	a.Serve("dev-err", func(_ context.Context, _ *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
		recv(output(1, nil))
		recv(output(2, nil))
		return fmt.Errorf("send to agent: %w", bus.ErrAgentGone)
	})
	for dev, want := range map[string]int{"dev-ok": 3, "dev-err": 2} {
		var got int
		err := b.Stream(context.Background(), dev, inventoryReq(), func(*desksidev1.AgentMessage) bool { got++; return false })
		if got != want {
			t.Errorf("%s: %d replies, want %d", dev, got, want)
		}
		if dev == "dev-ok" && err != nil {
			t.Errorf("%s: %v", dev, err)
		}
		if dev == "dev-err" && (!errors.Is(err, bus.ErrAgentGone) || err.Error() != "send to agent: "+bus.ErrAgentGone.Error()) {
			t.Errorf("%s: %v, want the handler's error", dev, err)
		}
	}
}

func TestErrorsCrossTheBus(t *testing.T) {
	testkit.CheckGoroutines(t)
	a, b := relays(t)
	cases := []struct {
		name  string
		err   error
		check func(error) bool
	}{
		{"agent gone", bus.ErrAgentGone, func(e error) bool { return e == bus.ErrAgentGone }},
		{"no route", bus.ErrNoRoute, func(e error) bool { return errors.Is(e, bus.ErrNoRoute) }},
		{"wrapped", fmt.Errorf("send to agent: %w", bus.ErrAgentGone), func(e error) bool {
			return errors.Is(e, bus.ErrAgentGone) && strings.HasPrefix(e.Error(), "send to agent: ")
		}},
		{"status", status.Error(codes.PermissionDenied, "not yours"), func(e error) bool {
			s, _ := status.FromError(e)
			return s.Code() == codes.PermissionDenied && s.Message() == "not yours"
		}},
		{"wrapped status", fmt.Errorf("send to agent: %w", status.Error(codes.Unavailable, "transport is closing")), func(e error) bool {
			return status.Code(e) == codes.Unavailable && strings.Contains(e.Error(), "transport is closing")
		}},
		{"deadline", context.DeadlineExceeded, func(e error) bool { return errors.Is(e, context.DeadlineExceeded) }},
		{"plain", errors.New("disk on fire"), func(e error) bool { return e.Error() == "disk on fire" }},
	}
	for i, c := range cases {
		dev := fmt.Sprintf("dev-%d", i)
		a.Serve(dev, func(context.Context, *desksidev1.RelayMessage, func(*desksidev1.AgentMessage) bool) error {
			return c.err
		})
		_, err := request(t, b, dev)
		if !c.check(err) {
			t.Errorf("%s: got %T %v", c.name, err, err)
		}
	}
}

func TestCancelReachesHandler(t *testing.T) {
	testkit.CheckGoroutines(t)
	a, b := relays(t)

	t.Run("after a reply", func(t *testing.T) {
		cancelled := make(chan struct{})
		a.Serve("dev-1", func(ctx context.Context, _ *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
			recv(output(1, nil))
			<-ctx.Done()
			close(cancelled)
			return ctx.Err()
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		err := b.Stream(ctx, "dev-1", inventoryReq(), func(*desksidev1.AgentMessage) bool { cancel(); return false })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stream: %v, want context.Canceled", err)
		}
		waitFor(t, "the handler's context to end", cancelled)
	})

	t.Run("before any reply", func(t *testing.T) {
		started, cancelled := make(chan struct{}), make(chan struct{})
		a.Serve("dev-2", func(ctx context.Context, _ *desksidev1.RelayMessage, _ func(*desksidev1.AgentMessage) bool) error {
			close(started)
			<-ctx.Done()
			close(cancelled)
			return ctx.Err()
		})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-started; cancel() }()
		err := b.Stream(ctx, "dev-2", inventoryReq(), func(*desksidev1.AgentMessage) bool { return false })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stream: %v, want context.Canceled", err)
		}
		waitFor(t, "the handler's context to end", cancelled)
	})

	t.Run("deadline", func(t *testing.T) {
		cancelled := make(chan struct{})
		a.Serve("dev-3", func(ctx context.Context, _ *desksidev1.RelayMessage, _ func(*desksidev1.AgentMessage) bool) error {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("the caller's deadline did not reach the serving relay")
			}
			<-ctx.Done()
			close(cancelled)
			return ctx.Err()
		})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := bus.Request(ctx, b, "dev-3", inventoryReq()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("request: %v, want DeadlineExceeded", err)
		}
		waitFor(t, "the handler's context to end", cancelled)
	})
}

func TestFlowControlHoldsTheHandler(t *testing.T) {
	testkit.CheckGoroutines(t)
	const window = 4
	a, b := relays(t, WithWindow(window, 1<<20))
	var sent atomic.Int64
	a.Serve("dev-1", func(ctx context.Context, _ *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
		for i := uint64(1); ; i++ {
			if recv(output(i, nil)) || ctx.Err() != nil {
				return ctx.Err()
			}
			sent.Add(1)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := true
	err := b.Stream(ctx, "dev-1", inventoryReq(), func(*desksidev1.AgentMessage) bool {
		if first { // the console is stuck: the handler must stop at the window
			first = false
			eventually(t, "the window to fill", func() bool { return sent.Load() >= window })
			time.Sleep(200 * time.Millisecond)
			if n := sent.Load(); n > window {
				t.Errorf("handler got %d replies through with none consumed; window is %d", n, window)
			}
			return false
		}
		return sent.Load() > 100
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTakeover(t *testing.T) {
	testkit.CheckGoroutines(t)
	a, b := relays(t)
	c := openAt(t, testURL(), a.base[len("deskside."):len(a.base)-1]) // a console-only relay

	replaced := make(chan struct{})
	stopA, err := a.ServeReplaced("dev-1", replyWith("A"), func() { close(replaced) })
	if err != nil {
		t.Fatal(err)
	}
	mustAnswer(t, c, "dev-1", "A")

	// The agent reconnects to relay b before a notices its stream died.
	stopB, err := b.Serve("dev-1", replyWith("B"))
	if err != nil {
		t.Fatal(err)
	}
	for _, via := range []*Bus{a, b, c} {
		mustAnswer(t, via, "dev-1", "B")
	}
	waitFor(t, "relay a to hear it was replaced", replaced)
	stopA() // the replaced stream ending must not remove the new route
	for _, via := range []*Bus{a, b, c} {
		mustAnswer(t, via, "dev-1", "B")
	}

	// And back to a.
	stopA2, _ := a.Serve("dev-1", replyWith("A2"))
	for _, via := range []*Bus{a, b, c} {
		mustAnswer(t, via, "dev-1", "A2")
	}
	stopB()
	mustAnswer(t, c, "dev-1", "A2")
	stopA2()
	if _, err := request(t, c, "dev-1"); !errors.Is(err, bus.ErrNoRoute) {
		t.Fatalf("after the last stop: %v, want ErrNoRoute", err)
	}

	// A reconnect to the same relay, as with bus.Local.
	stopOld, _ := a.Serve("dev-2", replyWith("old"))
	stopNew, _ := a.Serve("dev-2", replyWith("new"))
	mustAnswer(t, c, "dev-2", "new")
	stopOld()
	mustAnswer(t, c, "dev-2", "new")
	mustAnswer(t, a, "dev-2", "new")
	stopNew()
	if _, err := request(t, c, "dev-2"); !errors.Is(err, bus.ErrNoRoute) {
		t.Fatalf("after stop: %v, want ErrNoRoute", err)
	}
}

// Two relays serving a device at the same moment settle on exactly one.
func TestConcurrentServeSettles(t *testing.T) {
	testkit.CheckGoroutines(t)
	a, b := relays(t)
	for i := range 20 {
		dev := fmt.Sprintf("dev-%d", i)
		var replaced atomic.Int32
		var wg sync.WaitGroup
		for _, r := range []*Bus{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.ServeReplaced(dev, replyWith(r.id), func() { replaced.Add(1) }); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		eventually(t, "one route to yield", func() bool { return replaced.Load() >= 1 })
		if n := replaced.Load(); n != 1 {
			t.Fatalf("%s: %d routes yielded, want 1", dev, n)
		}
		winner, err := request(t, a, dev)
		if err != nil {
			t.Fatal(err)
		}
		mustAnswer(t, b, dev, winner)
		time.Sleep(20 * time.Millisecond) // late announcements must not unseat it
		if n := replaced.Load(); n != 1 {
			t.Fatalf("%s: %d routes yielded, want 1", dev, n)
		}
		mustAnswer(t, a, dev, winner)
	}
}

// A request that reaches a route just as it moves is sent again and
// reaches the new one.
func TestMovedRouteIsRetried(t *testing.T) {
	testkit.CheckGoroutines(t)
	a, b := relays(t)
	subj, _ := a.devSubject("dev-1")
	// A raw subscriber plays a relay that yields the route (to a) while
	// holding a request, and answers it "moved".
	nc, err := nats.Connect(testURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var sub *nats.Subscription
	sub, err = nc.Subscribe(subj+"req", func(m *nats.Msg) {
		sub.Unsubscribe()
		nc.Flush()
		if _, err := a.Serve("dev-1", replyWith("A")); err != nil {
			t.Error(err)
		}
		m.Respond(appendFrame(nil, kindEnd, 0, encodeErr(errMoved)))
	})
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	mustAnswer(t, b, "dev-1", "A")
}

// A relay cut off from NATS while its agent moved elsewhere yields when
// it comes back, and Stream on it fails clearly while it is away.
func TestPartitionedHolderYields(t *testing.T) {
	testkit.CheckGoroutines(t)
	prefix := newPrefix()
	p := newProxy(t)
	a := openAt(t, p.URL(), prefix, WithNATSOptions(nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0)))
	// A request that reaches NATS just before it notices relay a is gone
	// is delivered into the dead connection and waits out the caller's
	// heartbeats; keep that short for the polling below.
	b := openAt(t, testURL(), prefix, WithHeartbeat(200*time.Millisecond, 3))
	replaced := make(chan struct{})
	a.ServeReplaced("dev-1", replyWith("A"), func() { close(replaced) })
	mustAnswer(t, b, "dev-1", "A")

	p.cut()
	eventually(t, "relay a to notice", func() bool { return !a.nc.IsConnected() })
	eventually(t, "NATS to drop relay a's route", func() bool {
		_, err := request(t, b, "dev-1")
		return errors.Is(err, bus.ErrNoRoute)
	})
	if _, err := request(t, a, "dev-elsewhere"); !errors.Is(err, ErrDisconnected) {
		t.Errorf("stream while disconnected: %v, want ErrDisconnected", err)
	}
	mustAnswer(t, a, "dev-1", "A") // its own agent is still reachable from a
	b.Serve("dev-1", replyWith("B"))
	mustAnswer(t, b, "dev-1", "B")

	p.restore()
	waitFor(t, "relay a to yield after reconnecting", replaced)
	mustAnswer(t, a, "dev-1", "B")
	mustAnswer(t, b, "dev-1", "B")
}

// The serving relay dies mid-stream: the caller gets ErrAgentGone.
func TestServingRelayDies(t *testing.T) {
	testkit.CheckGoroutines(t)
	t.Run("crash", func(t *testing.T) {
		a, b := relays(t, WithHeartbeat(200*time.Millisecond, 3))
		a.Serve("dev-1", func(ctx context.Context, _ *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
			recv(output(1, nil))
			<-ctx.Done()
			return ctx.Err()
		})
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		err := b.Stream(ctx, "dev-1", inventoryReq(), func(*desksidev1.AgentMessage) bool {
			a.nc.Close() // its TCP connection ends as when the process dies
			return false
		})
		if !errors.Is(err, bus.ErrAgentGone) {
			t.Fatalf("stream: %v, want ErrAgentGone", err)
		}
		t.Log(err)
	})

	t.Run("hang", func(t *testing.T) {
		prefix := newPrefix()
		p := newProxy(t)
		a := openAt(t, p.URL(), prefix)
		b := openAt(t, testURL(), prefix, WithHeartbeat(200*time.Millisecond, 3))
		done := make(chan struct{})
		a.Serve("dev-1", func(ctx context.Context, _ *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
			recv(output(1, nil))
			<-ctx.Done()
			close(done)
			return ctx.Err()
		})
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		err := b.Stream(ctx, "dev-1", inventoryReq(), func(*desksidev1.AgentMessage) bool {
			p.freeze() // relay a hangs; NATS still thinks it is there
			return false
		})
		p.thaw()
		if !errors.Is(err, bus.ErrAgentGone) {
			t.Fatalf("stream: %v, want ErrAgentGone", err)
		}
		t.Log(err)
		waitFor(t, "relay a's handler to be cancelled", done)
	})

	t.Run("close", func(t *testing.T) {
		a, b := relays(t)
		started := make(chan struct{})
		a.Serve("dev-1", func(ctx context.Context, _ *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		})
		go func() { <-started; a.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		err := b.Stream(ctx, "dev-1", inventoryReq(), func(*desksidev1.AgentMessage) bool { return false })
		if !errors.Is(err, bus.ErrAgentGone) {
			t.Fatalf("stream: %v, want ErrAgentGone", err)
		}
		t.Log(err)
		if _, err := request(t, b, "dev-1"); !errors.Is(err, bus.ErrNoRoute) {
			t.Fatalf("after close: %v, want ErrNoRoute", err)
		}
		if _, err := request(t, a, "dev-1"); !errors.Is(err, ErrClosed) {
			t.Fatalf("closed bus: %v, want ErrClosed", err)
		}
	})
}

// The caller goes away: the serving relay cancels the handler.
func TestCallerGoesAway(t *testing.T) {
	testkit.CheckGoroutines(t)
	for _, how := range []string{"crash", "hang"} {
		t.Run(how, func(t *testing.T) {
			prefix := newPrefix()
			p := newProxy(t)
			caller := openAt(t, p.URL(), prefix, WithHeartbeat(200*time.Millisecond, 3))
			server := openAt(t, testURL(), prefix)
			done := make(chan struct{})
			server.Serve("dev-1", func(ctx context.Context, _ *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
				recv(output(1, nil))
				<-ctx.Done()
				close(done)
				return ctx.Err()
			})
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				errc <- caller.Stream(ctx, "dev-1", inventoryReq(), func(*desksidev1.AgentMessage) bool {
					if how == "crash" {
						caller.nc.Close()
					} else {
						p.freeze()
					}
					return false
				})
			}()
			waitFor(t, "the handler to be cancelled", done)
			if err := <-errc; !errors.Is(err, bus.ErrAgentGone) {
				t.Errorf("the caller's stream: %v, want ErrAgentGone", err)
			} else {
				t.Log(err)
			}
			p.thaw()
		})
	}
}

func TestTooLarge(t *testing.T) {
	testkit.CheckGoroutines(t)
	a, b := relays(t)
	big := int(b.nc.MaxPayload()) + 1
	cancelled := make(chan struct{})
	a.Serve("dev-1", func(ctx context.Context, req *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
		recv(output(1, make([]byte, big)))
		<-ctx.Done()
		close(cancelled)
		return ctx.Err()
	})
	_, err := bus.Request(context.Background(), b, "dev-1", &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_RunCommand{RunCommand: &desksidev1.RunCommand{Script: strings.Repeat("x", big)}}})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("large request: %v, want ErrTooLarge", err)
	}
	t.Log(err)
	_, err = request(t, b, "dev-1")
	t.Log(err)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "CommandOutput") {
		t.Fatalf("large reply: %v, want ErrTooLarge", err)
	}
	waitFor(t, "the handler's context to end", cancelled)
}

func TestConcurrentStreams(t *testing.T) {
	testkit.CheckGoroutines(t)
	a, b := relays(t, WithWindow(4, 1<<20))
	const devices, streams, msgs = 8, 64, 50
	for i := range devices {
		owner := a
		if i%2 == 1 {
			owner = b
		}
		dev := fmt.Sprintf("dev-%d", i)
		owner.Serve(dev, func(ctx context.Context, _ *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
			for j := uint64(1); j <= msgs; j++ {
				if recv(output(j, []byte(dev))) {
					return nil
				}
			}
			if recv(exit()) { // on the owner's relay recv is the caller's own
				return nil
			}
			<-ctx.Done()
			return ctx.Err()
		})
	}
	var wg sync.WaitGroup
	for s := range streams {
		wg.Go(func() {
			dev := fmt.Sprintf("dev-%d", s%devices)
			via := []*Bus{a, b}[s%3%2]
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			var n uint64
			err := via.Stream(ctx, dev, inventoryReq(), func(m *desksidev1.AgentMessage) bool {
				if m.GetCommandExit() != nil {
					return true
				}
				n++
				if o := m.GetCommandOutput(); o.GetSeq() != n || string(o.GetData()) != dev {
					t.Errorf("stream %d: reply %d is %d from %s", s, n, o.GetSeq(), o.GetData())
				}
				return false
			})
			if err != nil || n != msgs {
				t.Errorf("stream %d to %s: %v after %d replies", s, dev, err, n)
			}
		})
	}
	wg.Wait()
}

func TestOpenErrors(t *testing.T) {
	testkit.CheckGoroutines(t)
	if _, err := Open(testURL(), "bad prefix", nil); err == nil {
		t.Error("a prefix with a space was accepted")
	}
	if _, err := Open(testURL(), "a..b", nil); err == nil {
		t.Error("an empty prefix token was accepted")
	}
	if _, err := Open("nats://127.0.0.1:1", "x", nil); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("unreachable NATS: %v, want an error naming it", err)
	}
}

func TestErrorEncoding(t *testing.T) {
	testkit.CheckGoroutines(t)
	for _, err := range []error{nil, bus.ErrAgentGone, bus.ErrNoRoute, context.Canceled, context.DeadlineExceeded, ErrTooLarge, errMoved} {
		if got := decodeErr(encodeErr(err)); got != err {
			t.Errorf("%v came back as %v", err, got)
		}
	}
	wrapped := fmt.Errorf("relay: %w", bus.ErrNoRoute)
	if got := decodeErr(encodeErr(wrapped)); !errors.Is(got, bus.ErrNoRoute) || got.Error() != wrapped.Error() {
		t.Errorf("wrapped came back as %v", got)
	}
	h := reqHeader{heartbeat: time.Second, missed: 3, timeout: 1500 * time.Millisecond, winMsgs: 64, winBytes: 1 << 20}
	got, payload, err := decodeRequest(appendRequest(nil, h, []byte("body")))
	if err != nil || got != h || string(payload) != "body" {
		t.Errorf("request header: %+v %q %v", got, payload, err)
	}
	bad := appendRequest(nil, h, nil)
	bad[1] = 99
	if _, _, err := decodeRequest(bad); err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("other version: %v", err)
	}
}

// tcpProxy stands between one relay and NATS so tests can cut it off
// (both ends see the connection close) or freeze it (nobody notices).
type tcpProxy struct {
	ln     net.Listener
	target string
	gate   sync.RWMutex
	mu     sync.Mutex
	down   bool
	frozen bool
	conns  map[net.Conn]struct{}
}

func newProxy(t testing.TB) *tcpProxy {
	needNATS(t)
	u, err := url.Parse(strings.Split(testURL(), ",")[0])
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: u.Host, conns: make(map[net.Conn]struct{})}
	go p.serve()
	t.Cleanup(func() { p.thaw(); ln.Close(); p.cut() })
	return p
}

func (p *tcpProxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate.RLock()
			_, werr := dst.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				err = werr
			}
		}
		if err != nil {
			dst.Close()
			src.Close()
			return
		}
	}
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *tcpProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

func (p *tcpProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		p.frozen = true
		p.gate.Lock()
	}
}

func (p *tcpProxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		p.frozen = false
		p.gate.Unlock()
	}
}

func BenchmarkRequest(bm *testing.B) {
	a, b := relays(bm)
	a.Serve("dev-bench", replyWith("pong"))
	mustAnswer(bm, b, "dev-bench", "pong")
	ctx := context.Background()
	req := inventoryReq()
	bm.ReportAllocs()
	bm.ResetTimer()
	for bm.Loop() {
		if _, err := bus.Request(ctx, b, "dev-bench", req); err != nil {
			bm.Fatal(err)
		}
	}
}

func BenchmarkRequestParallel(bm *testing.B) {
	a, b := relays(bm)
	a.Serve("dev-bench", replyWith("pong"))
	mustAnswer(bm, b, "dev-bench", "pong")
	req := inventoryReq()
	bm.ReportAllocs()
	bm.ResetTimer()
	bm.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bus.Request(context.Background(), b, "dev-bench", req); err != nil {
				bm.Error(err)
				return
			}
		}
	})
}

// BenchmarkServe is an agent connecting: claim, subscribe, announce.
func BenchmarkServe(bm *testing.B) {
	a, _ := relays(bm)
	h := replyWith("x")
	i := 0
	for bm.Loop() {
		stop, err := a.Serve(fmt.Sprintf("dev-%d", i), h)
		if err != nil {
			bm.Fatal(err)
		}
		stop()
		i++
	}
}

// BenchmarkFanout1000: one request to each of 1,000 devices served by
// another relay, all at once (a bulk command).
func BenchmarkFanout1000(bm *testing.B) {
	const n = 1000
	a, b := relays(bm)
	for i := range n {
		if _, err := a.Serve(fmt.Sprintf("dev-%d", i), replyWith("pong")); err != nil {
			bm.Fatal(err)
		}
	}
	req := inventoryReq()
	bm.ResetTimer()
	for bm.Loop() {
		var wg sync.WaitGroup
		var failed atomic.Int32
		for i := range n {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				if _, err := bus.Request(ctx, b, fmt.Sprintf("dev-%d", i), req); err != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		if f := failed.Load(); f > 0 {
			bm.Fatalf("%d of %d requests failed", f, n)
		}
	}
	bm.ReportMetric(float64(bm.Elapsed().Nanoseconds())/float64(bm.N*n), "ns/device")
}

// BenchmarkRawNATSRequest is the floor: nats.go request/reply between two
// connections with the same payload, no natsbus.
func BenchmarkRawNATSRequest(bm *testing.B) {
	needNATS(bm)
	a, err := nats.Connect(testURL())
	if err != nil {
		bm.Fatal(err)
	}
	defer a.Close()
	b, err := nats.Connect(testURL())
	if err != nil {
		bm.Fatal(err)
	}
	defer b.Close()
	subj := newPrefix() + ".raw"
	a.Subscribe(subj, func(m *nats.Msg) { m.Respond(m.Data) })
	a.Flush()
	data := []byte("0123456789")
	for bm.Loop() {
		if _, err := b.Request(subj, data, wait); err != nil {
			bm.Fatal(err)
		}
	}
}

// TestFlowControlLargeAfterSmall checks that a reply too large for what is
// left of the window after a small one is not held until the next
// heartbeat: the caller acknowledges once it has consumed everything it
// received. (With a heartbeat far longer than the test's bound, a missing
// ack shows as the stream never finishing.)
func TestFlowControlLargeAfterSmall(t *testing.T) {
	testkit.CheckGoroutines(t)
	const winBytes = 64 << 10
	a, b := relays(t, WithWindow(64, winBytes), WithHeartbeat(time.Hour, 3))
	small, large := make([]byte, winBytes/4), make([]byte, winBytes*7/8)
	a.Serve("dev-1", func(ctx context.Context, _ *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
		recv(output(1, small))
		recv(output(2, large))
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var got int
	err := b.Stream(ctx, "dev-1", inventoryReq(), func(m *desksidev1.AgentMessage) bool {
		got += len(m.GetCommandOutput().GetData())
		return got == len(small)+len(large)
	})
	if err != nil {
		t.Fatalf("small then large reply: %v (the large one waited for an ack that never came)", err)
	}
}
