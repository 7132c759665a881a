package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/deskside/deskside/agent/command"
	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/internal/pemfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/pki"
	"github.com/deskside/deskside/relay/server/servertest"
)

// buildBinary builds a command of this module into dir.
func buildBinary(b *testing.B, dir, pkg string) string {
	b.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build %s: %v\n%s", pkg, err, o)
	}
	return out
}

// procStatus returns a field of /proc/PID/status in bytes (kB fields).
func procStatus(b *testing.B, pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb * 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// procCPU returns user+system CPU time of a process.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which may contain spaces) start at ")".
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck
}

// metricValue reads one gauge from a Prometheus text endpoint.
func metricValue(b *testing.B, url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	b.Fatalf("metric %s not found", name)
	return 0
}

// forceGC makes the relay collect garbage (pprof's heap endpoint with gc=1)
// so heap figures count live memory only.
// Several cycles: each may halve an oversized goroutine stack (the TLS
// handshake grows the connection goroutine's stack; an idle relay's
// periodic GC shrinks it back the same way).
func forceGC(b *testing.B, admin string) {
	for range 4 {
		resp, err := http.Get("http://" + admin + "/debug/pprof/heap?gc=1")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// relayBinary builds the relay command, or returns the binary that
// DESKSIDE_BENCH_RELAY names (to compare two builds with one benchmark).
func relayBinary(b *testing.B) string {
	if bin := os.Getenv("DESKSIDE_BENCH_RELAY"); bin != "" {
		return bin
	}
	return buildBinary(b, b.TempDir(), "github.com/deskside/deskside/relay/cmd/deskside-relay")
}

type relayProc struct {
	cmd   *exec.Cmd
	addr  string
	admin string
	data  string
}

func startRelayProc(b *testing.B, bin string, flags ...string) *relayProc {
	b.Helper()
	if runtime.GOOS != "linux" {
		b.Skip("process measurements read /proc")
	}
	data := b.TempDir()
	addr, admin := freePort(b), freePort(b)
	cmd := exec.Command(bin, "--config=", "--data", data, "--listen", addr, "--admin-listen", admin, "--web-listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0")
	cmd.Args = append(cmd.Args, flags...)
	cmd.Env = append(os.Environ(), "DESKSIDE_ADMIN_PASSWORD="+adminPassword)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(data, pki.CAFile)); err == nil {
			if resp, err := http.Get("http://" + admin + "/healthz"); err == nil {
				resp.Body.Close()
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("relay did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &relayProc{cmd: cmd, addr: addr, admin: admin, data: data}
}

func freePort(b *testing.B) string {
	l, err := netListenConfig{}.listen()
	if err != nil {
		b.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

// adminClient signs in to a relay process.
func (p *relayProc) console(b *testing.B) (desksidev1.ConsoleServiceClient, context.Context) {
	cc, ctx := p.signIn(b)
	return desksidev1.NewConsoleServiceClient(cc), ctx
}

// signIn signs in to a relay process as the admin: a connection for any
// console service and the signed-in context.
func (p *relayProc) signIn(b *testing.B) (*grpc.ClientConn, context.Context) {
	ca, err := pemfile.ReadCertificate(filepath.Join(p.data, pki.CAFile))
	if err != nil {
		b.Fatal(err)
	}
	pool := newPoolFor(ca)
	cc, err := grpc.NewClient("passthrough:///"+p.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: "127.0.0.1",
	})))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	cs := desksidev1.NewConsoleServiceClient(cc)
	ctx := context.Background()
	resp, err := cs.Login(ctx, &desksidev1.LoginRequest{Name: "admin", Password: adminPassword}, grpc.WaitForReady(true))
	if err != nil {
		b.Fatal(err)
	}
	return cc, withToken(ctx, resp.GetToken())
}

func (p *relayProc) token(b *testing.B, uses uint32) string {
	cs, ctx := p.console(b)
	resp, err := cs.CreateEnrollmentToken(ctx, &desksidev1.CreateEnrollmentTokenRequest{Ttl: durationpb.New(time.Hour), Uses: uses})
	if err != nil {
		b.Fatal(err)
	}
	return resp.GetToken()
}

// BenchmarkRelayMemoryPerIdleAgent connects 1,000 simulated agents (env
// DESKSIDE_BENCH_AGENTS; 10,000 fit this machine's file limit) over real
// mutual TLS to a relay process and reports the relay's memory per
// connected idle agent (target ≤ 20 KB). With DESKSIDE_BENCH_REPORTS set,
// each agent first sends what a real agent sends once connected (an
// inventory and a health report) and waits for both Acks, so handling
// them is in the measured state (ADR 36: it can leave the stream's
// goroutine with a larger stack).
func BenchmarkRelayMemoryPerIdleAgent(b *testing.B) {
	agents := benchEnvInt(b, "DESKSIDE_BENCH_AGENTS", 1000)
	reports := os.Getenv("DESKSIDE_BENCH_REPORTS") != ""
	bin := relayBinary(b)
	p := startRelayProc(b, bin)
	start := time.Now()
	// Enroll every agent first so enrollment garbage does not count.
	states := enrollProc(b, p, agents)
	b.Logf("enrolled %d agents in %s", agents, time.Since(start))
	time.Sleep(2 * time.Second) // let the relay settle and its GC run
	pid := p.cmd.Process.Pid
	forceGC(b, p.admin)
	rss0 := procStatus(b, pid, "VmRSS")
	heap0 := metricValue(b, "http://"+p.admin+"/metrics", "go_memstats_heap_inuse_bytes")
	stack0 := metricValue(b, "http://"+p.admin+"/metrics", "go_memstats_stack_inuse_bytes")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start = time.Now()
	for i, st := range states {
		cc, err := grpc.NewClient("passthrough:///"+p.addr, grpc.WithTransportCredentials(credentials.NewTLS(st.TLSConfig())))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		s, err := desksidev1.NewAgentServiceClient(cc).Connect(ctx)
		if err != nil {
			b.Fatalf("agent %d: %v", i, err)
		}
		if err := s.Send(&desksidev1.AgentMessage{Id: 1, Body: &desksidev1.AgentMessage_Hello{Hello: &desksidev1.Hello{ProtocolVersion: wire.ProtocolVersion, Hostname: st.DeviceID}}}); err != nil {
			b.Fatal(err)
		}
		if m, err := s.Recv(); err != nil || m.GetWelcome() == nil {
			b.Fatalf("agent %d welcome: %v", i, err)
		}
		if reports {
			benchAgentReports(b, i, s)
		}
	}
	b.Logf("connected %d agents in %s", agents, time.Since(start))
	if os.Getenv("DESKSIDE_BENCH_PPROF") != "" {
		resp, err := http.Get("http://" + p.admin + "/debug/pprof/heap")
		if err == nil {
			f, _ := os.Create(os.Getenv("DESKSIDE_BENCH_PPROF"))
			io.Copy(f, resp.Body)
			f.Close()
			resp.Body.Close()
		}
		resp, err = http.Get("http://" + p.admin + "/debug/pprof/goroutine?debug=1")
		if err == nil {
			f, _ := os.Create(os.Getenv("DESKSIDE_BENCH_PPROF") + ".goroutines")
			io.Copy(f, resp.Body)
			f.Close()
			resp.Body.Close()
		}
	}
	if n := metricValue(b, "http://"+p.admin+"/metrics", "deskside_agents_connected"); n != float64(agents) {
		b.Fatalf("relay reports %v agents connected", n)
	}
	time.Sleep(5 * time.Second) // idle
	forceGC(b, p.admin)
	rss1 := procStatus(b, pid, "VmRSS")
	heap1 := metricValue(b, "http://"+p.admin+"/metrics", "go_memstats_heap_inuse_bytes")
	stack1 := metricValue(b, "http://"+p.admin+"/metrics", "go_memstats_stack_inuse_bytes")
	n := float64(agents)
	b.ReportMetric((rss1-rss0)/n/1024, "RSS-KB/agent")
	b.ReportMetric((heap1-heap0)/n/1024, "heap-KB/agent")
	b.ReportMetric((stack1-stack0)/n/1024, "stack-KB/agent")
	b.ReportMetric(0, "ns/op")
}

// benchAgentReports sends an inventory and a health report on agent i's
// stream s, as an agent does once connected, and waits for their Acks.
func benchAgentReports(b *testing.B, i int, s desksidev1.AgentService_ConnectClient) {
	sample, _ := fakeSampler{}.Sample(context.Background())
	sample.Id = 1
	for _, m := range []*desksidev1.AgentMessage{
		{Id: 2, Body: &desksidev1.AgentMessage_Inventory{Inventory: &desksidev1.InventoryReport{Inventory: sampleInventory()}}},
		{Id: 3, Body: &desksidev1.AgentMessage_Health{Health: &desksidev1.HealthReport{Samples: []*desksidev1.HealthSample{sample}}}},
	} {
		if err := s.Send(m); err != nil {
			b.Fatalf("agent %d: %v", i, err)
		}
	}
	for acks := 0; acks < 2; {
		m, err := s.Recv()
		if err != nil {
			b.Fatalf("agent %d: %v", i, err)
		}
		if a := m.GetAck(); a != nil {
			if !a.GetAccepted() {
				b.Fatalf("agent %d: report refused: %v", i, a)
			}
			acks++
		}
	}
}

// BenchmarkAgentIdle runs the real agent binary against a relay and
// reports its RSS and CPU use over an idle window (default 60 s, env
// DESKSIDE_BENCH_IDLE). Targets: ≤ 25 MB RSS, ≤ 0.1 % of one core.
func BenchmarkAgentIdle(b *testing.B) {
	window := 60 * time.Second
	if v := os.Getenv("DESKSIDE_BENCH_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("DESKSIDE_BENCH_IDLE: %v", err)
		}
		window = d
	}
	dir := b.TempDir()
	relayBin := buildBinary(b, dir, "github.com/deskside/deskside/relay/cmd/deskside-relay")
	agentBin := buildBinary(b, dir, "github.com/deskside/deskside/agent/cmd/deskside-agent")
	p := startRelayProc(b, relayBin)
	state := filepath.Join(dir, "agent")
	if out, err := exec.Command(agentBin, "enroll", "--relay", p.addr, "--token", p.token(b, 1), "--state", state).CombinedOutput(); err != nil {
		b.Fatalf("enroll: %v\n%s", err, out)
	}
	agent := exec.Command(agentBin, "run", "--state", state)
	if err := agent.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { agent.Process.Signal(os.Interrupt); agent.Wait() }()
	time.Sleep(5 * time.Second) // start-up: first inventory and sample
	pid := agent.Process.Pid
	cpu0 := procCPU(b, pid)
	time.Sleep(window)
	cpu1 := procCPU(b, pid)
	b.ReportMetric(procStatus(b, pid, "VmRSS")/(1<<20), "RSS-MB")
	b.ReportMetric(float64(cpu1-cpu0)/float64(window)*100, "CPU-%core")
	b.ReportMetric(0, "ns/op")
}

// fleetOfAgents runs n real agents (each its own identity, TLS connection
// and stream) with the real command runner, in this process.
func fleetOfAgents(b *testing.B, r *servertest.Relay, n int) []string {
	return fleetOfAgentsWith(b, r, n, nil)
}

// fleetOfAgentsWith is fleetOfAgents with options of each agent's own
// (its Guard) from more, when set.
func fleetOfAgentsWith(b *testing.B, r *servertest.Relay, n int, more func(*enroll.State) servertest.AgentOptions) []string {
	states := r.EnrollMany(b, n, func(i int) string { return fmt.Sprintf("bench-%04d", i) })
	log := servertest.DiscardLogger()
	runner := command.New(command.Options{Logger: log})
	var agents []*servertest.Agent
	ids := make([]string, n)
	for i, st := range states {
		o := servertest.AgentOptions{}
		if more != nil {
			o = more(st)
		}
		o.Inventory, o.Health, o.HealthInterval = &fakeInventory{inv: sampleInventory()}, fakeSampler{}, time.Hour
		o.Hostname = fmt.Sprintf("bench-%04d", i)
		if o.Commands == nil {
			o.Commands = runner
		}
		agents = append(agents, servertest.RunAgent(b, st, o))
		ids[i] = st.DeviceID
	}
	servertest.CheckFor(b, 120*time.Second, 100*time.Millisecond, func() error {
		for _, a := range agents {
			if !a.Link.Connected() {
				return errNotYet
			}
		}
		return nil
	})
	return ids
}

// BenchmarkCommandDispatch measures console request → first output byte
// for `echo` on one device while 1,000 agents are connected. Targets:
// p50 ≤ 20 ms, p99 ≤ 100 ms.
func BenchmarkCommandDispatch(b *testing.B) {
	r := servertest.Start(b, servertest.Options{})
	ids := fleetOfAgents(b, r, 1000)
	cs, ctx := r.Admin(b)
	const runs = 300
	lat := make([]time.Duration, 0, runs)
	for i := range runs {
		start := time.Now()
		st, err := cs.RunCommand(ctx, &desksidev1.RunCommandRequest{DeviceId: ids[i%len(ids)], Command: &desksidev1.RunCommand{Command: "echo hi"}})
		if err != nil {
			b.Fatal(err)
		}
		first := time.Duration(0)
		for {
			m, err := st.Recv()
			if err != nil {
				break
			}
			if m.GetOutput() != nil && first == 0 {
				first = time.Since(start)
			}
		}
		if first == 0 {
			b.Fatal("no output")
		}
		lat = append(lat, first)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFanOutEcho1000 runs `echo` on 1,000 connected agents through
// one fan-out request and waits for every result. Target ≤ 2 s.
func BenchmarkFanOutEcho1000(b *testing.B) {
	benchFanOut(b, nil)
}

// echoInProcess answers every command with "hi" and exit 0 without
// starting a process, so a fan-out measures the relay and the links.
type echoInProcess struct{}

func (echoInProcess) Run(_ context.Context, _ *desksidev1.RunCommand, emit func(*desksidev1.CommandOutput) error) *desksidev1.CommandExit {
	_ = emit(&desksidev1.CommandOutput{Data: []byte("hi\n")})
	return &desksidev1.CommandExit{}
}

// BenchmarkFanOutInProcess1000 is BenchmarkFanOutEcho1000 with agents
// that answer without spawning a process: what is left is the relay's
// fan-out (the request to 1,000 streams, the results gathered) and the
// agents' links. Starting 1,000 `sh -c echo` costs this host seconds on
// its own, which the first row includes.
func BenchmarkFanOutInProcess1000(b *testing.B) {
	benchFanOut(b, func(*enroll.State) servertest.AgentOptions { return servertest.AgentOptions{Commands: echoInProcess{}} })
}

func benchFanOut(b *testing.B, more func(*enroll.State) servertest.AgentOptions) {
	r := servertest.Start(b, servertest.Options{})
	fleetOfAgentsWith(b, r, 1000, more)
	cs, ctx := r.Admin(b)
	var total time.Duration
	rounds := max(b.N, 3)
	for range rounds {
		start := time.Now()
		st, err := cs.RunCommand(ctx, &desksidev1.RunCommandRequest{Filter: &desksidev1.ListDevicesRequest{Hostname: "bench-"}, Command: &desksidev1.RunCommand{Command: "echo hi"}})
		if err != nil {
			b.Fatal(err)
		}
		var sum *desksidev1.CommandSummary
		for {
			m, err := st.Recv()
			if err != nil {
				break
			}
			if s := m.GetSummary(); s != nil {
				sum = s
			}
		}
		if sum.GetSucceeded() != 1000 {
			b.Fatalf("summary %v", sum)
		}
		total += time.Since(start)
	}
	b.ReportMetric(total.Seconds()/float64(rounds), "s/fanout")
	b.ReportMetric(0, "ns/op")
}
