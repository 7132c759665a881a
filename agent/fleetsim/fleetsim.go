// Package fleetsim simulates a fleet of Deskside agents against real
// relays, like Fleet's osquery-perf: each simulated agent enrolls with a
// real token, holds a real mutual-TLS gRPC stream through the agent's own
// link code (agent/link) and reconnects with its backoff, sends inventory
// from hardware and software templates and health samples on the real
// cadence, and answers pings, diagnostics and commands with realistic
// delays without running anything.
//
// A run is one parent and several worker processes (the same program,
// re-executed): each worker holds up to PerWorker agents, so that no
// process outgrows its open-file limit, and reports its counters to the
// parent over a pipe. The parent can start the relays itself (and then
// restart or kill them on cue), scripts events (relay restart, kill -9 of
// one of two relays, a network blackhole, inventory changes), sends
// console requests after each, and prints a summary: agents enrolled and
// connected, reconnects, failed handshakes, samples sent and acknowledged,
// requests answered, and the time until 50, 99 and 100 % of the agents
// were back after each event.
//
// It imports no relay code: it drives relays as processes and over their
// public APIs.
package fleetsim

import (
	"bufio"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"crypto/rand"
)

// Config configures a run.
type Config struct {
	// Agents is how many agents to simulate.
	Agents int
	// Duration is how long the fleet runs once it is up (events happen
	// within it).
	Duration time.Duration
	// Seed makes the inventory templates repeatable.
	Seed uint64
	// HealthInterval is the agents' sampling period (the relay may
	// override it); default 15 s. SampleJitter delays each sample by up
	// to this much; default a tenth of HealthInterval, at most 1 s.
	HealthInterval time.Duration
	SampleJitter   time.Duration
	// InventoryInterval is how often agents re-read their inventory;
	// default 10 minutes, as the agent.
	InventoryInterval time.Duration
	// PerWorker is the most agents per worker process; default 4,000,
	// lowered to fit the open-file limit.
	PerWorker int
	// SourceAddrs is how many loopback source addresses (127.0.0.1,
	// 127.0.0.2, …) agents dial from; 0 picks as many as the ephemeral
	// port range needs.
	SourceAddrs int
	// EnrollParallel is the enrollments in flight per worker; default 8.
	EnrollParallel int
	// StateDir is where workers keep their agents' keys, certificates
	// and spools (a temporary directory each, removed at the end);
	// default /dev/shm where it exists, else the temporary directory.
	StateDir string
	// SettleTimeout bounds the wait for every agent to be connected
	// before the events start; default 2 minutes plus 100 ms per agent.
	SettleTimeout time.Duration

	// Relays are the relays' agent addresses (HOST:PORT) when the
	// simulator does not start them; Token is an enrollment token with
	// enough uses. CAFile, AdminUser and AdminPassword, when set, let the
	// simulator send console requests to them.
	Relays        []string
	Token         string
	CAFile        string
	AdminUser     string
	AdminPassword string
	// AllowRemote allows relays at non-loopback addresses.
	AllowRemote bool

	// StartRelays, when above 0, starts that many relays from RelayBin
	// (default deskside-relay beside this program, then on $PATH) with
	// their data in RelayData (default a temporary directory, removed at
	// the end). Two or more need Database (PostgreSQL) and NATS.
	StartRelays int
	RelayBin    string
	RelayData   string
	Database    string
	NATS        string
	NATSPrefix  string
	RelayArgs   []string

	// Events are the scripted events.
	Events []Event
	// BlackholeIn is where a blackhole event cuts the network: "kernel"
	// (an nftables table dropping the agents' traffic to and from the
	// relays; root and nft needed), "agents" (simulated at the agents'
	// side), or "auto" (the default: the kernel where it can, else the
	// agents).
	BlackholeIn string
	// ConsoleRequests is how many devices get a console request (a ping,
	// or for one in four a command) after each event; default 20.
	ConsoleRequests int
	// Unsigned leaves the agents without an organisation key: they run
	// any command the relay sends, and the simulator signs nothing. By
	// default the simulator makes an organisation key, every agent pins
	// it, and commands go signed by a technician it certified, checked
	// by the agent's own guard as on a real fleet.
	Unsigned bool
	// Report, when set, is a file the summary is written to as JSON,
	// with every agent's last acknowledged sample.
	Report string

	// Exe is the program re-executed as workers; default this one.
	Exe    string
	Out    io.Writer
	Stderr io.Writer
}

// CheckAndSetDefaults validates c and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	var errs []error
	if c.Agents <= 0 {
		errs = append(errs, errors.New("fleetsim: --agents must be at least 1"))
	}
	if c.Duration <= 0 {
		errs = append(errs, errors.New("fleetsim: --duration must be positive (how long the fleet runs once up)"))
	}
	c.HealthInterval = cmp.Or(c.HealthInterval, 15*time.Second)
	if c.HealthInterval < 50*time.Millisecond {
		errs = append(errs, fmt.Errorf("fleetsim: --health-interval %s is below the agent's 50ms floor", c.HealthInterval))
	}
	if c.SampleJitter == 0 {
		c.SampleJitter = min(c.HealthInterval/10, time.Second)
	}
	c.InventoryInterval = cmp.Or(c.InventoryInterval, 10*time.Minute)
	c.BlackholeIn = cmp.Or(c.BlackholeIn, "auto")
	if c.BlackholeIn != "auto" && c.BlackholeIn != "kernel" && c.BlackholeIn != "agents" {
		errs = append(errs, fmt.Errorf("fleetsim: --blackhole-in %q: want auto, kernel or agents", c.BlackholeIn))
	}
	c.PerWorker = cmp.Or(c.PerWorker, 4000)
	if lim, err := fileLimit(); err == nil && lim < math.MaxInt32 {
		// Two files per agent (its socket and its spool) and headroom.
		c.PerWorker = max(1, min(c.PerWorker, int(lim-200)/3))
	}
	if c.SourceAddrs > 1<<16 {
		errs = append(errs, fmt.Errorf("fleetsim: --source-addrs %d: at most %d loopback addresses (127.0.0.1 upwards)", c.SourceAddrs, 1<<16))
	}
	if c.SourceAddrs == 0 {
		// Leave a fifth of the range for everything else.
		c.SourceAddrs = max(1, int(math.Ceil(float64(c.Agents)/(0.8*float64(ephemeralPorts())))))
	}
	c.EnrollParallel = cmp.Or(c.EnrollParallel, 8)
	c.SettleTimeout = cmp.Or(c.SettleTimeout, 2*time.Minute+time.Duration(c.Agents)*100*time.Millisecond)
	c.ConsoleRequests = cmp.Or(c.ConsoleRequests, 20)
	c.AdminUser = cmp.Or(c.AdminUser, "admin")
	if c.Out == nil {
		c.Out = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.StartRelays > 0 {
		if len(c.Relays) > 0 || c.Token != "" {
			errs = append(errs, errors.New("fleetsim: --start-relays starts relays and makes a token; do not also give --relay or --token"))
		}
		if c.StartRelays > 1 && (c.Database == "" || c.NATS == "") {
			errs = append(errs, errors.New("fleetsim: two or more relays share a PostgreSQL database and NATS: give --database and --nats"))
		}
		if c.RelayBin == "" {
			c.RelayBin = findRelayBin()
		}
	} else {
		if len(c.Relays) == 0 {
			errs = append(errs, errors.New("fleetsim: give --relay HOST:PORT and --token, or --start-relays N to start relays"))
		}
		if c.Token == "" && len(c.Relays) > 0 {
			errs = append(errs, errors.New("fleetsim: --token is required with --relay (create one: deskside token create --uses N)"))
		}
	}
	for _, r := range c.Relays {
		if err := checkLoopback(r, c.AllowRemote); err != nil {
			errs = append(errs, err)
		}
	}
	for _, e := range c.Events {
		if e.At >= c.Duration {
			errs = append(errs, fmt.Errorf("fleetsim: event %q at %s is not within --duration %s", e, e.At, c.Duration))
		}
		switch e.Kind {
		case EventFanOut:
			if c.StartRelays == 0 && (c.CAFile == "" || c.AdminPassword == "") {
				errs = append(errs, fmt.Errorf("fleetsim: event %q sends a console request: give --ca and --admin-password-file, or --start-relays", e))
			}
		case EventRestart, EventKill:
			if c.StartRelays == 0 {
				errs = append(errs, fmt.Errorf("fleetsim: event %q needs relays the simulator started (--start-relays)", e))
			} else if e.Relay >= c.StartRelays {
				errs = append(errs, fmt.Errorf("fleetsim: event %q: there are %d relays, numbered from 0", e, c.StartRelays))
			}
		}
	}
	return errors.Join(errs...)
}

// checkLoopback refuses relay addresses off this machine unless allowed:
// a simulated fleet is load, and load goes where it was meant to.
func checkLoopback(addr string, allow bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("fleetsim: relay address %q: %v (want HOST:PORT)", addr, err)
	}
	if allow || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("fleetsim: relay %q is not on a loopback address; a simulated fleet is load: pass --allow-remote if that relay is meant to take it", addr)
}

// findRelayBin is deskside-relay beside this program, else on $PATH.
func findRelayBin() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "deskside-relay")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("deskside-relay"); err == nil {
		return p
	}
	return "deskside-relay"
}

// Run runs the simulation and prints its summary to cfg.Out.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, started: time.Now()}
	defer r.cleanup()
	removeHoleLeftovers()
	if !cfg.Unsigned {
		tech, pin, err := newOrg(cfg.AdminUser, cfg.SettleTimeout+cfg.Duration+time.Hour)
		if err != nil {
			return nil, fmt.Errorf("fleetsim: organisation key: %w", err)
		}
		r.tech, r.orgPin = tech, pin
	}
	if err := r.setupRelays(ctx); err != nil {
		return nil, err
	}
	if err := r.setupBlackhole(); err != nil {
		return nil, err
	}
	defer r.hole.close()
	if err := r.startWorkers(ctx); err != nil {
		return nil, err
	}
	r.runFleet(ctx)
	r.stopWorkers()
	r.stopRelays()
	s := r.summary()
	s.Print(cfg.Out)
	if cfg.Report != "" {
		b, _ := json.MarshalIndent(s, "", "  ")
		if err := os.WriteFile(cfg.Report, append(b, '\n'), 0o644); err != nil {
			return s, fmt.Errorf("fleetsim: write the report: %w", err)
		}
	}
	return s, nil
}

// run is one simulation's state.
type run struct {
	cfg     Config
	started time.Time

	relays   []*ownedRelay
	dataDir  string // removed at the end when the simulator made it
	addrs    []string
	token    string
	console  *console
	tech     *technician // signs commands; nil with Unsigned
	orgPin   string      // the organisation key the agents pin
	caFile   string
	password string

	workers []*workerProc

	// hole cuts the network in the kernel for blackhole events; nil: at
	// the agents' side. holeIn says which, for the summary.
	hole   *kernelHole
	holeIn string

	mu      sync.Mutex
	latest  map[int]workerStats
	series  []point
	devices []string
	errors  []string
	finals  map[int]workerMsg

	events     []EventResult
	rounds     []RequestRound
	fanOuts    []FanOut
	relayUse   []*relayUse
	useStop    chan struct{}
	useDone    chan struct{}
	fleetUp    time.Time
	settleMiss string
}

// point is the fleet's connected count at a moment.
type point struct {
	t         time.Time
	connected int64
}

func (r *run) printf(format string, a ...any) {
	fmt.Fprintf(r.cfg.Out, "%7.1fs  "+format+"\n", append([]any{time.Since(r.started).Seconds()}, a...)...)
}

// setupBlackhole decides where blackhole events cut the network
// (Config.BlackholeIn).
func (r *run) setupBlackhole() error {
	needed := false
	for _, e := range r.cfg.Events {
		needed = needed || e.Kind == EventBlackhole
	}
	if !needed {
		return nil
	}
	if r.cfg.BlackholeIn == "agents" {
		r.holeIn = "agents (simulated)"
		r.printf("blackholes: simulated at the agents' side (--blackhole-in agents)")
		return nil
	}
	h, err := newKernelHole(r.addrs, r.cfg.SourceAddrs)
	if err != nil {
		if r.cfg.BlackholeIn == "kernel" {
			return fmt.Errorf("fleetsim: --blackhole-in kernel: %w; or use --blackhole-in agents", err)
		}
		r.holeIn = "agents (simulated: " + err.Error() + ")"
		r.printf("blackholes: simulated at the agents' side (%v)", err)
		return nil
	}
	r.hole, r.holeIn = h, "kernel (nftables)"
	r.printf("blackholes: in the kernel (%s)", h)
	return nil
}

// setupRelays starts the relays when asked, and gets a token.
func (r *run) setupRelays(ctx context.Context) error {
	cfg := r.cfg
	if cfg.StartRelays == 0 {
		r.addrs, r.token = cfg.Relays, cfg.Token
		if cfg.CAFile != "" && cfg.AdminPassword != "" {
			c, err := signIn(ctx, r.addrs[0], cfg.CAFile, cfg.AdminUser, cfg.AdminPassword)
			if err != nil {
				return err
			}
			c.tech = r.tech
			r.console = c
		}
		return nil
	}
	dir := cfg.RelayData
	if dir == "" {
		d, err := os.MkdirTemp("", "deskside-fleetsim-relays-")
		if err != nil {
			return err
		}
		dir, r.dataDir = d, d
	}
	var pw [16]byte
	rand.Read(pw[:])
	password := hex.EncodeToString(pw[:])
	var backend []string
	if cfg.Database != "" {
		backend = append(backend, "--database", cfg.Database)
	}
	if cfg.NATS != "" {
		backend = append(backend, "--nats", cfg.NATS)
		if cfg.NATSPrefix != "" {
			backend = append(backend, "--nats-prefix", cfg.NATSPrefix)
		}
	}
	for i := range cfg.StartRelays {
		rl, err := newOwnedRelay(fmt.Sprintf("relay-%d", i), cfg.RelayBin, filepath.Join(dir, fmt.Sprintf("relay-%d", i)), password, backend, cfg.RelayArgs)
		if err != nil {
			return err
		}
		if i > 0 {
			if err := rl.copyIdentity(r.relays[0]); err != nil {
				return err
			}
		}
		r.printf("starting %s on %s (data %s)", rl.name, rl.addr, rl.dir)
		if err := rl.start(ctx); err != nil {
			return err
		}
		r.relays = append(r.relays, rl)
		r.addrs = append(r.addrs, rl.addr)
	}
	r.caFile, r.password = filepath.Join(r.relays[0].dir, "ca.pem"), password
	c, err := signIn(ctx, r.addrs[0], r.caFile, "admin", password)
	if err != nil {
		return fmt.Errorf("%w (relay log: %s)", err, r.relays[0].log.Name())
	}
	c.tech = r.tech
	r.console = c
	tok, err := c.createToken(ctx, cfg.Agents)
	if err != nil {
		return err
	}
	r.token = tok
	r.startRelayUse()
	return nil
}

// workerProc is one worker process.
type workerProc struct {
	id    int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	ready chan workerMsg
	final chan workerMsg
	done  chan struct{}
}

func (w *workerProc) send(c command) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, _ := json.Marshal(c)
	w.stdin.Write(append(b, '\n'))
}

// startWorkers starts the worker processes and hands out the agents.
func (r *run) startWorkers(ctx context.Context) error {
	cfg := r.cfg
	exe := cfg.Exe
	if exe == "" {
		e, err := os.Executable()
		if err != nil {
			return fmt.Errorf("fleetsim: find this program to start workers: %w", err)
		}
		exe = e
	}
	r.latest = map[int]workerStats{}
	r.finals = map[int]workerMsg{}
	n := (cfg.Agents + cfg.PerWorker - 1) / cfg.PerWorker
	r.printf("%d agents in %d worker process(es), %d source address(es), health every %s, relays %s",
		cfg.Agents, n, cfg.SourceAddrs, cfg.HealthInterval, strings.Join(r.addrs, ", "))
	maxLife := cfg.SettleTimeout + cfg.Duration + 10*time.Minute
	for i := range n {
		first := i * cfg.PerWorker
		count := min(cfg.PerWorker, cfg.Agents-first)
		wc := workerConfig{Worker: i, First: first, Count: count, Relays: r.addrs, Token: r.token, Seed: cfg.Seed,
			HealthInterval: cfg.HealthInterval, InventoryInterval: cfg.InventoryInterval, SampleJitter: cfg.SampleJitter,
			SourceAddrs: cfg.SourceAddrs, EnrollParallel: cfg.EnrollParallel, EnrollTimeout: cfg.SettleTimeout,
			MaxLife: maxLife, StatsEvery: 200 * time.Millisecond, StateDir: cfg.StateDir, OrgPin: r.orgPin}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), WorkerEnv+"=1")
		cmd.Stderr = cfg.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("fleetsim: start worker %d (%s): %w", i, exe, err)
		}
		w := &workerProc{id: i, cmd: cmd, stdin: stdin, ready: make(chan workerMsg, 1), final: make(chan workerMsg, 1), done: make(chan struct{})}
		r.workers = append(r.workers, w)
		b, _ := json.Marshal(wc)
		stdin.Write(append(b, '\n'))
		go r.readWorker(w, stdout)
	}
	return nil
}

// readWorker takes a worker's reports until it exits.
func (r *run) readWorker(w *workerProc, out io.Reader) {
	defer close(w.done)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		var m workerMsg
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if m.Stats != nil {
			r.update(w.id, *m.Stats, m.Type != "final")
		}
		switch m.Type {
		case "ready":
			w.ready <- m
		case "final":
			w.final <- m
		}
	}
	w.cmd.Wait()
}

// update records a worker's counters and the fleet's connected count.
func (r *run) update(worker int, s workerStats, live bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.latest[worker]
	if !live {
		s.Connected = prev.Connected
	}
	r.latest[worker] = s
	if live {
		r.series = append(r.series, point{time.Now(), r.totalLocked().Connected})
	}
}

func (r *run) totalLocked() workerStats {
	var t workerStats
	for _, s := range r.latest {
		t.Agents += s.Agents
		t.Enrolled += s.Enrolled
		t.EnrollFailed += s.EnrollFailed
		t.Connected += s.Connected
		t.Connects += s.Connects
		t.DialFailures += s.DialFailures
		t.FailedHandshakes += s.FailedHandshakes
		t.Samples += s.Samples
		t.Acked += s.Acked
		t.Requests += s.Requests
		t.Answered += s.Answered
		t.Refused += s.Refused
		t.InvChanges += s.InvChanges
	}
	return t
}

func (r *run) total() workerStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.totalLocked()
}

// runFleet waits for the fleet to enroll and connect, then runs the
// events until Duration has passed.
func (r *run) runFleet(ctx context.Context) {
	cfg := r.cfg
	// Enrollment, with a progress line every 10 s.
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	for _, w := range r.workers {
	wait:
		for {
			select {
			case m := <-w.ready:
				r.mu.Lock()
				r.devices = append(r.devices, m.Devices...)
				r.errors = append(r.errors, m.Errors...)
				r.mu.Unlock()
				break wait
			case <-w.done:
				r.printf("worker %d exited during enrollment", w.id)
				break wait
			case <-progress.C:
				t := r.total()
				r.printf("enrolling: %d of %d enrolled (%d failed), %d connected", t.Enrolled, cfg.Agents, t.EnrollFailed, t.Connected)
			case <-ctx.Done():
				return
			}
		}
	}
	t := r.total()
	r.printf("enrolled %d of %d agents (%d failed)", t.Enrolled, cfg.Agents, t.EnrollFailed)
	// Every enrolled agent connected.
	start := EventResult{Event: "start", at: r.started, Before: 0}
	deadline := time.Now().Add(cfg.SettleTimeout)
	for r.total().Connected < t.Enrolled && time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-progress.C:
			r.printf("connecting: %d of %d connected", r.total().Connected, t.Enrolled)
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.fleetUp = time.Now()
	if c := r.total().Connected; c < t.Enrolled {
		r.settleMiss = fmt.Sprintf("only %d of %d enrolled agents connected within %s", c, t.Enrolled, cfg.SettleTimeout)
		r.printf("%s; going on", r.settleMiss)
	} else {
		r.printf("all %d enrolled agents connected", c)
	}
	r.events = append(r.events, r.evaluate(start, r.fleetUp, t.Enrolled))
	r.round(ctx, "start")
	r.steady(true)

	statusDone := make(chan struct{})
	defer close(statusDone)
	go r.status(statusDone)

	events := append([]Event(nil), cfg.Events...)
	sort.SliceStable(events, func(i, j int) bool { return events[i].At < events[j].At })
	end := r.fleetUp.Add(cfg.Duration)
	for i, e := range events {
		if !sleepUntil(ctx, r.fleetUp.Add(e.At)) {
			return
		}
		if i == 0 {
			r.steady(false)
		}
		// The fleet gets until the end of the run to come back; the next
		// event waits for that (a storm is not cut short by the next one).
		r.event(ctx, e, end)
	}
	sleepUntil(ctx, end)
	r.steady(false)
	t = r.total()
	r.printf("duration over: %d of %d agents connected; stopping", t.Connected, t.Enrolled)
}

// status prints a line every 30 s while the fleet runs.
func (r *run) status(done <-chan struct{}) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		s := r.total()
		line := fmt.Sprintf("status: %d of %d connected, %d samples taken, %d acknowledged, %d reconnects", s.Connected, s.Enrolled,
			s.Samples, s.Acked, max(s.Connects-s.Enrolled, 0))
		r.mu.Lock()
		for _, u := range r.relayUse {
			if pid := u.rl.pid(); pid != 0 {
				if rss, _, err := procStat(pid); err == nil {
					line += fmt.Sprintf("; %s RSS %.0f MiB", u.rl.name, float64(rss)/(1<<20))
				}
			}
		}
		r.mu.Unlock()
		r.printf("%s", line)
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	return sleep(ctx, max(time.Until(t), 0)) || ctx.Err() == nil
}

// event runs e and watches the fleet come back until windowEnd.
func (r *run) event(ctx context.Context, e Event, windowEnd time.Time) {
	before := r.total()
	res := EventResult{Event: e.String(), Before: before.Connected, at: time.Now(), connectsBefore: before.Connects, hsBefore: before.FailedHandshakes}
	r.printf("event: %s (%d agents connected)", e, before.Connected)
	var holeEnd time.Time
	switch e.Kind {
	case EventRestart:
		for i, rl := range r.relays {
			if e.Relay >= 0 && i != e.Relay {
				continue
			}
			if !rl.running() {
				continue
			}
			if err := rl.stop(30 * time.Second); err != nil {
				r.printf("%v", err)
			}
		}
		r.printf("relay(s) stopped; starting again")
		for i, rl := range r.relays {
			if e.Relay >= 0 && i != e.Relay {
				continue
			}
			if err := rl.start(ctx); err != nil {
				r.printf("restart %s: %v", rl.name, err)
				res.Problems = append(res.Problems, err.Error())
			}
		}
	case EventKill:
		rl := r.relays[e.Relay]
		rl.kill()
		r.printf("killed %s (pid gone); its agents go to the other relay(s)", rl.name)
	case EventBlackhole:
		holeEnd = time.Now().Add(e.For)
		if r.hole != nil {
			if err := r.hole.drop(e.For); err != nil {
				holeEnd = time.Time{}
				r.printf("blackhole in the kernel failed: %v", err)
				res.Problems = append(res.Problems, "blackhole in the kernel failed: "+err.Error())
			}
			break
		}
		for _, w := range r.workers {
			w.send(command{Op: "blackhole", Duration: e.For})
		}
	case EventInventory:
		for _, w := range r.workers {
			w.send(command{Op: "inventory", Share: e.Share})
		}
	case EventFanOut:
		if c, addr, done := r.liveConsole(ctx); c != nil {
			f := c.fanOut(ctx, "at "+e.At.String(), addr)
			done()
			r.mu.Lock()
			r.fanOuts = append(r.fanOuts, f)
			r.mu.Unlock()
			r.printf("%s", f.line())
		}
	}
	// Wait until the fleet is whole again (and a blackhole over).
	for time.Now().Before(windowEnd) && ctx.Err() == nil {
		if time.Now().After(holeEnd) && r.total().Connected >= before.Connected && time.Since(res.at) > time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	res = r.evaluate(res, time.Now(), before.Connected)
	r.mu.Lock()
	r.events = append(r.events, res)
	r.mu.Unlock()
	r.printf("%s", res.line())
	r.round(ctx, e.String())
	if e.Kind == EventInventory {
		t := r.total()
		r.printf("inventory changes made: %d", t.InvChanges)
	}
}

// liveConsole is a console session on a running relay: the first one's,
// or when the simulator's first relay is down a new one on another
// (closed by done). It is nil when there is none.
func (r *run) liveConsole(ctx context.Context) (c *console, addr string, done func()) {
	if r.console == nil {
		return nil, "", nil
	}
	if len(r.relays) == 0 || r.relays[0].running() {
		return r.console, r.addrs[0], func() {}
	}
	for _, rl := range r.relays[1:] {
		if !rl.running() {
			continue
		}
		nc, err := signIn(ctx, rl.addr, r.caFile, "admin", r.password)
		if err != nil {
			r.printf("console on %s: %v", rl.name, err)
			return nil, "", nil
		}
		nc.tech = r.tech
		return nc, rl.addr, nc.close
	}
	r.printf("console: no relay is running")
	return nil, "", nil
}

// round sends console requests through a running relay.
func (r *run) round(ctx context.Context, after string) {
	c, addr, done := r.liveConsole(ctx)
	if c == nil {
		return
	}
	defer done()
	r.mu.Lock()
	ids := append([]string(nil), r.devices...)
	r.mu.Unlock()
	rr := c.round(ctx, after, addr, ids, r.cfg.ConsoleRequests)
	r.mu.Lock()
	r.rounds = append(r.rounds, rr)
	r.mu.Unlock()
	r.printf("console requests after %s via %s: %d sent, %d answered, %d refused with a reason %v, %d unanswered %v",
		after, addr, rr.Sent, rr.Answered, rr.Refused, reasonsSorted(rr.Reasons), rr.Unanswered, rr.Problems)
}

// stopWorkers tells every worker to stop and collects its final report.
func (r *run) stopWorkers() {
	for _, w := range r.workers {
		w.send(command{Op: "stop"})
	}
	for _, w := range r.workers {
		select {
		case <-w.done: // it has sent its final report, if any
		case <-time.After(2 * time.Minute):
			r.printf("worker %d did not stop within 2 minutes; killing it", w.id)
			w.cmd.Process.Kill()
		}
		w.stdin.Close()
		<-w.done
		select {
		case m := <-w.final:
			r.mu.Lock()
			r.finals[w.id] = m
			r.mu.Unlock()
		default:
			r.printf("worker %d ended without its final report (%v): its agents' acknowledged samples are not counted", w.id, w.cmd.ProcessState)
		}
	}
}

// stopRelays stops the relays the simulator started.
func (r *run) stopRelays() {
	if r.console != nil {
		r.console.close()
		r.console = nil
	}
	r.stopRelayUse()
	for _, rl := range r.relays {
		if err := rl.stop(30 * time.Second); err != nil {
			r.printf("%v", err)
		}
	}
}

// cleanup removes what the run made, whatever happened.
func (r *run) cleanup() {
	for _, w := range r.workers {
		select {
		case <-w.done:
		default:
			w.cmd.Process.Kill()
			<-w.done
		}
	}
	r.stopRelays()
	for _, rl := range r.relays {
		rl.log.Close()
	}
	if r.dataDir != "" {
		os.RemoveAll(r.dataDir)
	}
}
