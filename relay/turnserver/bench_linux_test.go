package turnserver_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"

	"github.com/deskside/deskside/relay/turnserver"
)

const (
	// A flow is one relayed 1 Mbit/s stream: 125 packets a second of 1,000
	// bytes from one client's allocation to another's on the same server,
	// as in a relay-only desktop session where both peers use TURN.
	flowPacketSize = 1000
	flowPacketRate = 125
	// turnWarmup lets permissions and channel bindings settle; turnWindow
	// is what is measured.
	turnWarmup = time.Second
	turnWindow = 5 * time.Second
)

// procCPU returns the user+system CPU time of a process.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which may hold spaces) start at ")".
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck
}

// procCtxSwitches returns the context switches of a process's threads
// (a diagnostic: each costs the server a sleep and a wake-up).
func procCtxSwitches(pid int) int64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var n int64
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += c
			}
		}
	}
	return n
}

// udpDrops returns the datagrams dropped for want of receive buffer space
// by each loopback UDP socket (/proc/net/udp "drops"), by port: a
// diagnostic for where lost packets went.
func udpDrops() map[int]int64 {
	raw, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return nil
	}
	out := map[int]int64{}
	for _, l := range strings.Split(string(raw), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 13 {
			continue
		}
		_, port, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err1 := strconv.ParseInt(port, 16, 32)
		d, err2 := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err1 == nil && err2 == nil {
			out[int(p)] += d
		}
	}
	return out
}

func portOf(a net.Addr) int { return a.(*net.UDPAddr).Port }

// startTURNProc builds and starts the turnbench command, returning its
// process and the server's address.
func startTURNProc(b *testing.B, secret []byte) (*exec.Cmd, string) {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "turnbench")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/deskside/deskside/relay/turnserver/internal/turnbench/cmd").CombinedOutput(); err != nil {
		b.Fatalf("build turnbench: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--secret", hex.EncodeToString(secret))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	port := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		port <- strings.TrimSpace(line)
	}()
	select {
	case p := <-port:
		if _, err := strconv.Atoi(p); err != nil {
			b.Fatalf("turnbench printed %q, not a port", p)
		}
		return cmd, net.JoinHostPort("127.0.0.1", p)
	case <-time.After(30 * time.Second):
		b.Fatal("turnbench did not start")
	}
	return nil, ""
}

// turnPeer is one TURN client with its allocation.
type turnPeer struct {
	client *turn.Client
	base   net.PacketConn
	relay  net.PacketConn
}

func allocatePeer(server string, secret []byte, session string, lf logging.LoggerFactory) (*turnPeer, error) {
	base, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cred := turnserver.Issue(secret, nil, session, time.Hour)
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: server, Conn: base, Username: cred.Username, Password: cred.Password,
		Realm: turnserver.Realm, LoggerFactory: lf})
	if err != nil {
		base.Close()
		return nil, err
	}
	if err := c.Listen(); err != nil {
		c.Close()
		base.Close()
		return nil, err
	}
	relay, err := c.Allocate()
	if err != nil {
		c.Close()
		base.Close()
		return nil, err
	}
	return &turnPeer{client: c, base: base, relay: relay}, nil
}

func (p *turnPeer) close() {
	p.relay.Close()
	p.client.Close()
	p.base.Close()
}

// BenchmarkTURNRelayFlows runs the relay's TURN server in its own process
// (turnbench) and N flows through it (default 200; env
// DESKSIDE_BENCH_TURN_FLOWS): N pairs of pion/turn clients on loopback,
// each pair's sender writing 1 Mbit/s (125 packets/s of 1,000 bytes) from
// its allocation to the receiver's allocation, which the server relays
// allocation to allocation and back out to the receiving client. Over 5 s
// it reads the server process's CPU time from /proc and reports
// flows per core = N / (server CPU seconds / wall seconds) (target
// ≥ 1,000), the packet loss over the whole run, the server's CPU use and
// the rate each flow achieved.
func BenchmarkTURNRelayFlows(b *testing.B) {
	flows := 200
	if v := os.Getenv("DESKSIDE_BENCH_TURN_FLOWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("DESKSIDE_BENCH_TURN_FLOWS=%q", v)
		}
		flows = n
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	proc, server := startTURNProc(b, secret)
	pid := proc.Process.Pid

	// Allocate 2N relayed addresses, 16 at a time.
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	peers := make([]*turnPeer, 2*flows)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, len(peers))
	start := time.Now()
	for i := range peers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p, err := allocatePeer(server, secret, fmt.Sprintf("bench-%d", i/2), lf) // a flow's two peers share a session
			if err != nil {
				errs <- fmt.Errorf("allocation %d: %w", i, err)
				return
			}
			peers[i] = p
		}()
	}
	wg.Wait()
	close(errs)
	b.Cleanup(func() {
		for _, p := range peers {
			if p != nil {
				p.close()
			}
		}
	})
	for err := range errs {
		b.Fatal(err)
	}
	b.Logf("%d allocations in %v", len(peers), time.Since(start).Round(time.Millisecond))

	// Receivers count data packets; the first packet from the sender (a
	// probe) proves the path.
	var received, receivedBytes atomic.Int64
	reached := make([]atomic.Bool, flows)
	for f := range flows {
		rx := peers[2*f+1]
		go func() {
			buf := make([]byte, 1600)
			for {
				n, _, err := rx.relay.ReadFrom(buf)
				if err != nil {
					return
				}
				reached[f].Store(true)
				if n == flowPacketSize {
					received.Add(1)
					receivedBytes.Add(int64(n))
				}
			}
		}()
	}
	// Permissions both ways (the server forwards to an allocation only
	// what its client permitted), then probes until every flow is through.
	for f := range flows {
		tx, rx := peers[2*f], peers[2*f+1]
		if _, err := rx.relay.WriteTo([]byte("hello"), tx.relay.LocalAddr()); err != nil {
			b.Fatalf("flow %d: %v", f, err)
		}
	}
	probe := func() error {
		missing := 0
		for f := range flows {
			if !reached[f].Load() {
				missing++
				tx, rx := peers[2*f], peers[2*f+1]
				tx.relay.WriteTo([]byte("probe"), rx.relay.LocalAddr())
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d flows not through", missing)
		}
		return nil
	}
	deadline := time.Now().Add(20 * time.Second)
	for err := probe(); err != nil; err = probe() {
		if time.Now().After(deadline) {
			b.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Senders: one goroutine a flow, 125 packets a second, staggered.
	var sent atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var senders sync.WaitGroup
	interval := time.Second / flowPacketRate
	for f := range flows {
		tx, rx := peers[2*f], peers[2*f+1]
		senders.Add(1)
		go func() {
			defer senders.Done()
			time.Sleep(interval * time.Duration(f) / time.Duration(flows))
			pkt := make([]byte, flowPacketSize)
			to := rx.relay.LocalAddr()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for seq := uint64(0); ; seq++ {
				binary.BigEndian.PutUint64(pkt, seq)
				if _, err := tx.relay.WriteTo(pkt, to); err == nil {
					sent.Add(1)
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	time.Sleep(turnWarmup)
	cpu0, t0, rb0, s0, cs0 := procCPU(b, pid), time.Now(), receivedBytes.Load(), sent.Load(), procCtxSwitches(pid)
	time.Sleep(turnWindow)
	cpu1, t1, rb1, s1, cs1 := procCPU(b, pid), time.Now(), receivedBytes.Load(), sent.Load(), procCtxSwitches(pid)
	cancel()
	senders.Wait()
	time.Sleep(500 * time.Millisecond) // drain what is still in flight
	total, got := sent.Load(), received.Load()
	// Where were packets dropped: the server's listening socket, its
	// allocations' sockets, or the clients' sockets?
	drops := udpDrops()
	serverPort, _ := strconv.Atoi(server[strings.LastIndexByte(server, ':')+1:])
	var dropServer, dropRelayed, dropClients int64
	dropServer = drops[serverPort]
	for _, p := range peers {
		dropRelayed += drops[portOf(p.relay.LocalAddr())]
		dropClients += drops[portOf(p.base.LocalAddr())]
	}

	wall := t1.Sub(t0).Seconds()
	cores := (cpu1 - cpu0).Seconds() / wall
	loss := 100 * float64(total-got) / float64(total)
	perFlow := float64(rb1-rb0) * 8 / 1e6 / wall / float64(flows)
	b.Logf("%d flows: server CPU %v over %.2f s (%.1f%% of a core); %d packets sent in the window, %d in all, %d received (%.3f%% lost); %.3f Mbit/s a flow received; datagrams dropped for full receive buffers: %d at the server's listening socket, %d at its allocations' sockets, %d at the clients' sockets; server CPU %.1f µs and %.2f context switches a packet sent in the window",
		flows, cpu1-cpu0, wall, cores*100, s1-s0, total, got, loss, perFlow, dropServer, dropRelayed, dropClients,
		float64((cpu1-cpu0).Microseconds())/float64(max(s1-s0, 1)), float64(cs1-cs0)/float64(max(s1-s0, 1)))
	if cores > 0 {
		b.ReportMetric(float64(flows)/cores, "flows/core")
	}
	b.ReportMetric(loss, "loss-%")
	b.ReportMetric(cores*100, "server-CPU-%core")
	b.ReportMetric(perFlow, "Mbit/s/flow")
	b.ReportMetric(0, "ns/op")
}
