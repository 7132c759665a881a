package turnserver_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"

	"github.com/deskside/deskside/internal/testkit"
	"github.com/deskside/deskside/relay/turnserver"
)

const (
	// A flow is one relayed 1 Mbit/s stream: 125 packets a second of 1,000
	// bytes from one client's allocation to another's on the same server,
	// as in a relay-only desktop session where both peers use TURN.
	flowPacketSize = 1000
	flowPacketRate = 125
	// flowFrame is the packets of one video frame, sent back to back: at 25
	// frames a second a frame of 5 kB, what a 1 Mbit/s desktop stream
	// sends (pion's WriteSample writes a frame's packets at once).
	flowFrame = 5
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
	// Its counters, printed at exit, go to the benchmark's log: written to
	// stderr they would land inside the benchmark's result line, which
	// make bench parses.
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		b.Logf("%s", bytes.TrimSpace(stderr.Bytes()))
	})
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

// startCoturn starts coturn's turnserver in the foreground on a free
// loopback port, with its own configuration on the command line (no
// configuration file, no CLI, no TLS), the TURN REST secret and loopback
// peers allowed, and returns its process and address once it answers.
func startCoturn(b *testing.B, secret string) (*exec.Cmd, string) {
	b.Helper()
	bin, err := exec.LookPath("turnserver")
	testkit.Need(b, "coturn (turnserver)", err, "install the Debian package coturn (make deps)")
	dir := b.TempDir()
	for range 10 {
		probe, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		port := probe.LocalAddr().(*net.UDPAddr).Port
		probe.Close()
		cmd := exec.Command(bin, "-n", "--no-cli", "--no-tls", "--no-dtls", "--no-rfc5780", "--no-tcp-relay",
			"--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1", "--listening-port", strconv.Itoa(port),
			"--use-auth-secret", "--static-auth-secret", secret, "--realm", turnserver.Realm,
			"--allow-loopback-peers", "--no-software-attribute",
			"--log-file", filepath.Join(dir, "turnserver.log"), "--simple-log", "--no-stdout-log",
			"--pidfile", filepath.Join(dir, "turnserver.pid"))
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		server := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		// It answers once an allocation succeeds.
		lf := logging.NewDefaultLoggerFactory()
		lf.DefaultLogLevel = logging.LogLevelError
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				deadline = time.Time{} // the port was taken meanwhile: try another
				continue
			default:
			}
			p, err := allocatePeer(server, []byte(secret), "probe", lf)
			if err == nil {
				p.close()
				b.Cleanup(func() { cmd.Process.Signal(os.Interrupt); <-exited })
				return cmd, server
			}
			time.Sleep(100 * time.Millisecond)
		}
		cmd.Process.Kill()
		<-exited
	}
	log, _ := os.ReadFile(filepath.Join(dir, "turnserver.log"))
	b.Fatalf("coturn did not start; its log:\n%s", log)
	return nil, ""
}

// flowSet is N flows through one TURN server: N pairs of pion/turn
// clients on loopback, each pair's sender writing from its allocation to
// the receiver's allocation, which the server relays allocation to
// allocation and back out to the receiving client.
type flowSet struct {
	name   string
	pid    int
	server string
	peers  []*turnPeer
	flows  int

	received, receivedBytes atomic.Int64
}

// newFlowSet allocates 2N relayed addresses on server (16 at a time) with
// credentials signed with key, and makes sure every flow's path is
// through.
func newFlowSet(b *testing.B, name string, pid int, server string, key []byte, flows int) *flowSet {
	b.Helper()
	fs := &flowSet{name: name, pid: pid, server: server, flows: flows, peers: make([]*turnPeer, 2*flows)}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, len(fs.peers))
	start := time.Now()
	for i := range fs.peers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p, err := allocatePeer(server, key, fmt.Sprintf("bench-%d", i/2), lf) // a flow's two peers share a session
			if err != nil {
				errs <- fmt.Errorf("%s: allocation %d: %w", name, i, err)
				return
			}
			fs.peers[i] = p
		}()
	}
	wg.Wait()
	close(errs)
	b.Cleanup(func() {
		for _, p := range fs.peers {
			if p != nil {
				p.close()
			}
		}
	})
	for err := range errs {
		b.Fatal(err)
	}
	b.Logf("%s: %d allocations in %v", name, len(fs.peers), time.Since(start).Round(time.Millisecond))

	// Receivers count data packets; the first packet from the sender (a
	// probe) proves the path.
	reached := make([]atomic.Bool, flows)
	for f := range flows {
		rx := fs.peers[2*f+1]
		go func() {
			buf := make([]byte, 1600)
			for {
				n, _, err := rx.relay.ReadFrom(buf)
				if err != nil {
					return
				}
				reached[f].Store(true)
				if n == flowPacketSize {
					fs.received.Add(1)
					fs.receivedBytes.Add(int64(n))
				}
			}
		}()
	}
	// Permissions both ways (a server forwards to an allocation only what
	// its client permitted), then probes until every flow is through.
	for f := range flows {
		tx, rx := fs.peers[2*f], fs.peers[2*f+1]
		if _, err := rx.relay.WriteTo([]byte("hello"), tx.relay.LocalAddr()); err != nil {
			b.Fatalf("%s: flow %d: %v", name, f, err)
		}
	}
	probe := func() error {
		missing := 0
		for f := range flows {
			if !reached[f].Load() {
				missing++
				tx, rx := fs.peers[2*f], fs.peers[2*f+1]
				tx.relay.WriteTo([]byte("probe"), rx.relay.LocalAddr())
			}
		}
		if missing > 0 {
			return fmt.Errorf("%s: %d flows not through", name, missing)
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
	return fs
}

// flowResult is one measurement of a flowSet.
type flowResult struct {
	flowsPerCore float64 // relayed Mbit/s (in 1 Mbit/s flows) per core of server CPU
	cores        float64 // server CPU over the window, in cores
	perFlow      float64 // Mbit/s a flow received
	sent, lost   int64   // packets over the whole run
	usPerPacket  float64 // server CPU a packet sent in the window
}

// measure runs the flows at 1 Mbit/s (125 packets/s of 1,000 bytes,
// staggered), reads the server's CPU time over turnWindow after
// turnWarmup, and counts the packets lost over the whole run.
//
// With frame > 1 a flow sends its packets in frames of that many, back to
// back, at 125/frame frames a second (the same 1 Mbit/s), as a desktop
// session's video arrives: pion's WriteSample packetizes a frame and
// writes all of its packets at once.
func (fs *flowSet) measure(b *testing.B, frame int) flowResult {
	b.Helper()
	var sent atomic.Int64
	got0 := fs.received.Load()
	ctx, cancel := context.WithCancel(context.Background())
	var senders sync.WaitGroup
	frame = max(frame, 1)
	interval := time.Second * time.Duration(frame) / flowPacketRate
	for f := range fs.flows {
		tx, rx := fs.peers[2*f], fs.peers[2*f+1]
		senders.Add(1)
		go func() {
			defer senders.Done()
			time.Sleep(interval * time.Duration(f) / time.Duration(fs.flows))
			pkt := make([]byte, flowPacketSize)
			to := rx.relay.LocalAddr()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for seq := uint64(0); ; {
				for range frame {
					binary.BigEndian.PutUint64(pkt, seq)
					seq++
					if _, err := tx.relay.WriteTo(pkt, to); err == nil {
						sent.Add(1)
					}
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
	drops0 := udpDrops()
	cpu0, t0, rb0, s0, cs0 := procCPU(b, fs.pid), time.Now(), fs.receivedBytes.Load(), sent.Load(), procCtxSwitches(fs.pid)
	time.Sleep(turnWindow)
	cpu1, t1, rb1, s1, cs1 := procCPU(b, fs.pid), time.Now(), fs.receivedBytes.Load(), sent.Load(), procCtxSwitches(fs.pid)
	cancel()
	senders.Wait()
	time.Sleep(500 * time.Millisecond) // drain what is still in flight
	total, got := sent.Load(), fs.received.Load()-got0
	// Where were packets dropped: the server's listening socket, its
	// allocations' sockets, or the clients' sockets?
	drops1 := udpDrops()
	drop := func(port int) int64 { return drops1[port] - drops0[port] }
	serverPort, _ := strconv.Atoi(fs.server[strings.LastIndexByte(fs.server, ':')+1:])
	var dropRelayed, dropClients int64
	for _, p := range fs.peers {
		dropRelayed += drop(portOf(p.relay.LocalAddr()))
		dropClients += drop(portOf(p.base.LocalAddr()))
	}

	wall := t1.Sub(t0).Seconds()
	r := flowResult{cores: (cpu1 - cpu0).Seconds() / wall, sent: total, lost: max(total-got, 0),
		perFlow:     float64(rb1-rb0) * 8 / 1e6 / wall / float64(fs.flows),
		usPerPacket: float64((cpu1 - cpu0).Microseconds()) / float64(max(s1-s0, 1))}
	if r.cores > 0 {
		r.flowsPerCore = float64(fs.flows) * r.perFlow / r.cores
	}
	b.Logf("%s, %d flows: %.0f flows/core; server CPU %v over %.2f s (%.1f%% of a core); %d packets sent in the window, %d in all, %d received (%.3f%% lost); %.3f Mbit/s a flow received; datagrams dropped for full receive buffers in the window: %d at the server's listening socket, %d at its allocations' sockets, %d at the clients' sockets; server CPU %.1f µs and %.2f context switches a packet sent in the window",
		fs.name, fs.flows, r.flowsPerCore, cpu1-cpu0, wall, r.cores*100, s1-s0, total, got, 100*float64(r.lost)/float64(max(total, 1)), r.perFlow,
		drop(serverPort), dropRelayed, dropClients, r.usPerPacket, float64(cs1-cs0)/float64(max(s1-s0, 1)))
	return r
}

// medianOf returns the median, minimum and maximum of xs.
func medianOf(xs []float64) (med, lo, hi float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

// BenchmarkTURNRelayFlows measures how many relayed 1 Mbit/s flows a core
// of server CPU carries, for the relay's TURN server (turnbench, in its
// own process) and for coturn (Debian's turnserver, in the foreground on
// loopback with TURN REST credentials) on the same machine in the same
// run, with the same load generator: N flows (default 200; env
// DESKSIDE_BENCH_TURN_FLOWS) of pion/turn clients, each pair's sender
// writing 1 Mbit/s (125 packets/s of 1,000 bytes) from its allocation to
// the receiver's allocation (a relay-only desktop session: both peers use
// TURN), in two traffic patterns:
//
//   - frames: a frame of 5 packets back to back 25 times a second, as a
//     desktop session's video arrives (the metrics without a prefix);
//   - paced: one packet every 8 ms, the worst case for batching (paced-).
//
// Both servers hold their allocations throughout; the rounds (default 3;
// env DESKSIDE_BENCH_TURN_ROUNDS) measure one server after the other,
// alternating which goes first, so that a change in the machine's load
// touches both. Each measurement reads the server process's CPU time from
// /proc over 5 s: flows per core = relayed Mbit/s / (server CPU seconds /
// wall seconds), which is N / cores when every flow gets its 1 Mbit/s (a
// busy load generator that sends less does not inflate it). It reports
// per pattern the median over the rounds and its spread (flows/core, -min,
// -max; the same with coturn-), the median of the rounds' ratios
// (vs-coturn), and the packet loss over all rounds.
func BenchmarkTURNRelayFlows(b *testing.B) {
	flows := envCount(b, "DESKSIDE_BENCH_TURN_FLOWS", 200)
	rounds := envCount(b, "DESKSIDE_BENCH_TURN_ROUNDS", 3)
	secret := make([]byte, 32)
	rand.Read(secret)
	proc, server := startTURNProc(b, secret)
	coturnSecret := hex.EncodeToString(secret) // coturn takes the secret as a string
	cproc, cserver := startCoturn(b, coturnSecret)

	ours := newFlowSet(b, "deskside", proc.Process.Pid, server, secret, flows)
	theirs := newFlowSet(b, "coturn", cproc.Process.Pid, cserver, []byte(coturnSecret), flows)

	for _, pat := range []struct {
		prefix string
		frame  int
	}{{"", flowFrame}, {"paced-", 1}} {
		b.Logf("%d packets a frame:", pat.frame)
		var oursFPC, theirsFPC, ratios []float64
		var oursSent, oursLost, theirsSent, theirsLost int64
		for r := range rounds {
			var o, t flowResult
			if r%2 == 0 {
				o, t = ours.measure(b, pat.frame), theirs.measure(b, pat.frame)
			} else {
				t, o = theirs.measure(b, pat.frame), ours.measure(b, pat.frame)
			}
			oursFPC, theirsFPC = append(oursFPC, o.flowsPerCore), append(theirsFPC, t.flowsPerCore)
			if t.flowsPerCore > 0 {
				ratios = append(ratios, o.flowsPerCore/t.flowsPerCore)
			}
			oursSent, oursLost = oursSent+o.sent, oursLost+o.lost
			theirsSent, theirsLost = theirsSent+t.sent, theirsLost+t.lost
		}
		med, lo, hi := medianOf(oursFPC)
		b.ReportMetric(med, pat.prefix+"flows/core")
		b.ReportMetric(lo, pat.prefix+"flows/core-min")
		b.ReportMetric(hi, pat.prefix+"flows/core-max")
		med, lo, hi = medianOf(theirsFPC)
		b.ReportMetric(med, pat.prefix+"coturn-flows/core")
		b.ReportMetric(lo, pat.prefix+"coturn-flows/core-min")
		b.ReportMetric(hi, pat.prefix+"coturn-flows/core-max")
		if len(ratios) > 0 {
			med, _, _ = medianOf(ratios)
			b.ReportMetric(med, pat.prefix+"vs-coturn")
		}
		b.ReportMetric(100*float64(oursLost)/float64(max(oursSent, 1)), pat.prefix+"loss-%")
		b.ReportMetric(100*float64(theirsLost)/float64(max(theirsSent, 1)), pat.prefix+"coturn-loss-%")
	}
	b.ReportMetric(0, "ns/op")
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average at the end: %s", strings.TrimSpace(string(la)))
	}
}

// envCount reads a positive count from the environment, or def.
func envCount(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
