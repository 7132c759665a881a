package fleetsim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/link"
)

func TestParseEvent(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Event
		err  string
	}{
		{in: "30s:restart", want: Event{At: 30 * time.Second, Kind: EventRestart, Relay: -1}},
		{in: "30s:restart=1", want: Event{At: 30 * time.Second, Kind: EventRestart, Relay: 1}},
		{in: "1m:kill", want: Event{At: time.Minute, Kind: EventKill}},
		{in: " 90s:blackhole=10s ", want: Event{At: 90 * time.Second, Kind: EventBlackhole, For: 10 * time.Second}},
		{in: "2m:inventory=25%", want: Event{At: 2 * time.Minute, Kind: EventInventory, Share: 0.25}},
		{in: "restart", err: "want AT:KIND"},
		{in: "soon:restart", err: "not a time"},
		{in: "1s:reboot", err: "unknown kind"},
		{in: "1s:blackhole", err: "blackhole=DURATION"},
		{in: "1s:inventory=150%", err: "inventory=PERCENT"},
		{in: "1s:kill=x", err: "relay's number"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseEvent(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseEvent(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseEvent(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
	evs, err := ParseScript("# storm then failover\n10s:restart\n40s:kill=0; 60s:blackhole=5s\n")
	if err != nil || len(evs) != 3 || evs[2].Kind != EventBlackhole {
		t.Fatalf("ParseScript = %+v, %v", evs, err)
	}
}

func TestConfigRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"no relay", Config{Agents: 1, Duration: time.Second}, "--relay HOST:PORT and --token, or --start-relays"},
		{"no token", Config{Agents: 1, Duration: time.Second, Relays: []string{"127.0.0.1:7443"}}, "--token is required"},
		{"remote relay", Config{Agents: 1, Duration: time.Second, Relays: []string{"192.0.2.7:7443"}, Token: "t"}, "--allow-remote"},
		{"restart of a relay not started", Config{Agents: 1, Duration: time.Minute, Relays: []string{"127.0.0.1:7443"}, Token: "t",
			Events: []Event{{At: time.Second, Kind: EventRestart, Relay: -1}}}, "needs relays the simulator started"},
		{"two relays on SQLite", Config{Agents: 1, Duration: time.Minute, StartRelays: 2}, "--database and --nats"},
		{"event after the end", Config{Agents: 1, Duration: time.Minute, StartRelays: 1,
			Events: []Event{{At: time.Hour, Kind: EventBlackhole, For: time.Second}}}, "not within --duration"},
		{"no duration", Config{Agents: 1, StartRelays: 1}, "--duration must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.CheckAndSetDefaults()
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("CheckAndSetDefaults = %v, want an error with %q", err, tc.err)
			}
		})
	}
	ok := Config{Agents: 1, Duration: time.Minute, Relays: []string{"localhost:7443", "[::1]:7443"}, Token: "t"}
	if err := ok.CheckAndSetDefaults(); err != nil {
		t.Fatalf("loopback relays refused: %v", err)
	}
	remote := Config{Agents: 1, Duration: time.Minute, Relays: []string{"relay.example.org:7443"}, Token: "t", AllowRemote: true}
	if err := remote.CheckAndSetDefaults(); err != nil {
		t.Fatalf("--allow-remote: %v", err)
	}
}

// The same seed gives the same fleet; the fleet is varied.
func TestMachinesRepeatableAndVaried(t *testing.T) {
	var n atomic.Uint64
	models, oses, hosts := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i := range 200 {
		a, _ := newMachine(7, i, 0, &n).Read(context.Background())
		b, _ := newMachine(7, i, 0, &n).Read(context.Background())
		a.BootTime, b.BootTime, a.Users, b.Users = nil, nil, nil, nil
		if !bytes.Equal(link.Fingerprint(a), link.Fingerprint(b)) {
			t.Fatalf("machine %d differs between two builds from one seed", i)
		}
		models[a.GetSystem().GetModel()] = true
		oses[a.GetOs().GetName()+" "+a.GetOs().GetVersion()] = true
		hosts[a.GetHostname()] = true
	}
	if len(models) < 5 || len(oses) < 6 || len(hosts) != 200 {
		t.Errorf("%d models, %d OS versions, %d host names in 200 machines: not varied enough", len(models), len(oses), len(hosts))
	}
	m := newMachine(7, 1, 0, &n)
	before, _ := m.Read(context.Background())
	m.Change()
	after, _ := m.Read(context.Background())
	if bytes.Equal(link.Fingerprint(before), link.Fingerprint(after)) {
		t.Error("Change left the inventory's fingerprint as it was: the link would not send it")
	}
	s, err := m.Sample(context.Background())
	if err != nil || s.GetMemTotalBytes() == 0 || len(s.GetTopCpu()) == 0 || len(s.GetMounts()) == 0 || n.Load() != 1 {
		t.Errorf("Sample = %v, %v (count %d)", s, err, n.Load())
	}
}

// During a blackhole a new dial waits and gives up with its context, and
// a write waits until the blackhole ends; then traffic flows again.
func TestBlackhole(t *testing.T) {
	lis := echoListener(t)
	n := &network{relays: []string{lis.Addr().String()}, c: &counters{}}
	dial := n.dialer(net.IPv4(127, 0, 0, 2), nil)
	c, err := dial(context.Background(), lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ip := c.LocalAddr().(*net.TCPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 2)) {
		t.Errorf("dialed from %s, want 127.0.0.2", ip)
	}

	const hole = 300 * time.Millisecond
	n.blackhole(hole)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if _, err := dial(ctx, lis.Addr().String()); !errors.Is(err, errBlackholed) {
		t.Errorf("dial during the blackhole: %v, want %v", err, errBlackholed)
	}
	cancel()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(began); waited < hole-20*time.Millisecond {
		t.Errorf("a write went through %s into a %s blackhole", waited, hole)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Errorf("after the blackhole: %q, %v", buf, err)
	}
}

// echoListener is a TCP listener on 127.0.0.1 that echoes what each
// connection sends, closed at the test's end.
func echoListener(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return lis
}
