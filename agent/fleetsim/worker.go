package fleetsim

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// WorkerEnv, set in a process's environment, makes deskside-fleetsim a
// worker of a parent run (RunWorker) rather than a parent.
const WorkerEnv = "DESKSIDE_FLEETSIM_WORKER"

// IsWorker reports whether this process was started as a worker.
func IsWorker() bool { return os.Getenv(WorkerEnv) == "1" }

// workerConfig is what a parent tells a worker, as the first line on its
// standard input.
type workerConfig struct {
	Worker            int           `json:"worker"`
	First             int           `json:"first"`
	Count             int           `json:"count"`
	Relays            []string      `json:"relays"`
	Token             string        `json:"token"`
	Seed              uint64        `json:"seed"`
	HealthInterval    time.Duration `json:"health_interval"`
	InventoryInterval time.Duration `json:"inventory_interval"`
	SampleJitter      time.Duration `json:"sample_jitter"`
	SourceAddrs       int           `json:"source_addrs"`
	EnrollParallel    int           `json:"enroll_parallel"`
	EnrollTimeout     time.Duration `json:"enroll_timeout"`
	// MaxLife stops the worker by itself should the parent never say stop.
	MaxLife time.Duration `json:"max_life"`
	// StateDir holds the agents' identities and spools; default /dev/shm
	// where it exists (stateBase).
	StateDir   string        `json:"state_dir,omitempty"`
	StatsEvery time.Duration `json:"stats_every"`
	// OrgPin, when set, is the organisation key's fingerprint every
	// agent pins: commands and actions then run only under a
	// technician's signed envelope, checked by the agent's own guard.
	OrgPin string `json:"org_pin,omitempty"`
}

// stateBase is where a worker keeps its agents' state: dir when set,
// else /dev/shm when it is a writable directory (memory: the fsync each
// real agent does on its own disk per acknowledged report would, for
// thousands of agents on one shared disk, measure that disk rather than
// the relay), else the system's temporary directory.
func stateBase(dir string) string {
	if dir != "" {
		return dir
	}
	if f, err := os.CreateTemp("/dev/shm", "deskside-fleetsim-probe-"); err == nil {
		f.Close()
		os.Remove(f.Name())
		return "/dev/shm"
	}
	return ""
}

// command is what a parent sends a running worker, one per line.
type command struct {
	Op       string        `json:"op"` // "blackhole", "inventory", "stop"
	Duration time.Duration `json:"duration,omitempty"`
	Share    float64       `json:"share,omitempty"`
}

// workerStats are a worker's counters, sent every StatsEvery.
type workerStats struct {
	Worker           int    `json:"worker"`
	Agents           int    `json:"agents"`
	Enrolled         int64  `json:"enrolled"`
	EnrollFailed     int64  `json:"enroll_failed"`
	Connected        int64  `json:"connected"`
	Connects         int64  `json:"connects"`
	DialFailures     int64  `json:"dial_failures"`
	FailedHandshakes int64  `json:"failed_handshakes"`
	Samples          uint64 `json:"samples"`
	Acked            uint64 `json:"acked"`
	Requests         int64  `json:"requests"`
	Answered         int64  `json:"answered"`
	Refused          int64  `json:"refused"`
	InvChanges       int64  `json:"inventory_changes"`
}

// AgentReport is one simulated agent at the end of a run.
type AgentReport struct {
	Index    int    `json:"index"`
	Hostname string `json:"hostname"`
	DeviceID string `json:"device_id,omitempty"`
	// AckedUpTo is the last health sample id the relay acknowledged: the
	// relay must hold samples 1..AckedUpTo of the device.
	AckedUpTo uint64 `json:"acked_up_to"`
	Issued    uint64 `json:"issued"`
	Error     string `json:"error,omitempty"`
}

// workerMsg is one line a worker writes to its parent.
type workerMsg struct {
	Type    string        `json:"type"` // "stats", "ready", "final"
	Stats   *workerStats  `json:"stats,omitempty"`
	Devices []string      `json:"devices,omitempty"`
	Agents  []AgentReport `json:"agents,omitempty"`
	Errors  []string      `json:"errors,omitempty"`
}

// RunWorker runs the agents a parent assigns on in and reports on out
// until the parent says stop, in closes, or the worker's time is up.
func RunWorker(ctx context.Context, in io.Reader, out io.Writer, stderr io.Writer) error {
	rd := bufio.NewReader(in)
	line, err := rd.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("fleetsim worker: read configuration: %w", err)
	}
	var cfg workerConfig
	if err := json.Unmarshal(line, &cfg); err != nil {
		return fmt.Errorf("fleetsim worker: configuration: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxLife)
	defer cancel()

	dir, err := os.MkdirTemp(stateBase(cfg.StateDir), "deskside-fleetsim-"+strconv.Itoa(cfg.Worker)+"-")
	if err != nil {
		return fmt.Errorf("fleetsim worker: %w", err)
	}
	defer os.RemoveAll(dir)

	var mu sync.Mutex // serializes writes to out
	enc := json.NewEncoder(out)
	emit := func(m workerMsg) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(m)
	}
	c := &counters{}
	n := &network{relays: cfg.Relays, c: c}
	log := slog.New(newQuietHandler(stderr, fmt.Sprintf("worker %d: ", cfg.Worker)))

	agents := make([]*simAgent, cfg.Count)
	for i := range agents {
		idx := cfg.First + i
		a := &simAgent{index: idx, m: newMachine(cfg.Seed, idx, cfg.SampleJitter, &c.samples),
			dir: filepath.Join(dir, strconv.Itoa(idx)), relay: cfg.Relays[idx%len(cfg.Relays)]}
		if cfg.SourceAddrs > 1 {
			a.local = agentSource(1 + idx%cfg.SourceAddrs)
		}
		agents[i] = a
	}

	// Commands from the parent.
	cmds := make(chan command, 16)
	go func() {
		defer close(cmds)
		for {
			line, err := rd.ReadBytes('\n')
			if err != nil {
				return
			}
			var cmd command
			if json.Unmarshal(line, &cmd) == nil {
				cmds <- cmd
			}
		}
	}()

	// Enroll, then run each agent's link as soon as it is enrolled.
	runCtx, stopAgents := context.WithCancel(ctx)
	defer stopAgents()
	var running sync.WaitGroup
	var startMu sync.Mutex
	started := make([]bool, len(agents))
	var errMu sync.Mutex
	var errs []string
	enrollDone := make(chan struct{})
	go func() {
		defer close(enrollDone)
		deadline := time.Now().Add(cfg.EnrollTimeout)
		sem := make(chan struct{}, max(cfg.EnrollParallel, 1))
		var wg sync.WaitGroup
		for i, a := range agents {
			if runCtx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				err := a.enroll(runCtx, n, cfg.Token, deadline)
				if err == nil {
					err = a.start(n, c, &cfg, log)
				}
				if err != nil {
					c.enrollFailed.Add(1)
					errMu.Lock()
					if len(errs) < 20 {
						errs = append(errs, err.Error())
					}
					errMu.Unlock()
					return
				}
				c.enrolled.Add(1)
				startMu.Lock()
				defer startMu.Unlock()
				if runCtx.Err() != nil {
					a.sp.Close()
					return
				}
				started[i] = true
				running.Add(1)
				go func() {
					defer running.Done()
					if err := a.link.Run(runCtx); err != nil {
						log.Error("agent link ended", "agent", a.index, "err", err)
					}
				}()
			}()
		}
		wg.Wait()
	}()

	var acked atomic.Uint64 // summed once a second below
	stats := func() *workerStats {
		s := &workerStats{Worker: cfg.Worker, Agents: cfg.Count, Enrolled: c.enrolled.Load(), EnrollFailed: c.enrollFailed.Load(),
			Connects: c.connects.Load(), DialFailures: c.dialFailures.Load(), FailedHandshakes: c.failedHandshakes.Load(),
			Samples: c.samples.Load(), Requests: c.requests.Load(), Answered: c.answered.Load(), Refused: c.refused.Load(), InvChanges: c.invChanges.Load()}
		s.Acked = acked.Load()
		startMu.Lock()
		defer startMu.Unlock()
		for i, a := range agents {
			if started[i] && a.link.Connected() {
				s.Connected++
			}
		}
		return s
	}
	// The acknowledged count takes each spool's lock, which a slow disk
	// can hold: it is summed apart, so the connected count stays fresh.
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
			}
			var live []*simAgent
			startMu.Lock()
			for i, a := range agents {
				if started[i] {
					live = append(live, a)
				}
			}
			startMu.Unlock()
			var sum uint64
			for _, a := range live {
				sum += a.sp.Issued() - uint64(a.sp.Len())
			}
			acked.Store(sum)
		}
	}()

	tick := time.NewTicker(cfg.StatsEvery)
	defer tick.Stop()
	ready := enrollDone
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Worker)<<32|0xc4a6))
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			emit(workerMsg{Type: "stats", Stats: stats()})
		case <-ready:
			ready = nil
			var ids []string
			startMu.Lock()
			for i, a := range agents {
				if started[i] {
					ids = append(ids, a.st.DeviceID)
				}
			}
			startMu.Unlock()
			errMu.Lock()
			emit(workerMsg{Type: "ready", Devices: ids, Errors: errs, Stats: stats()})
			errMu.Unlock()
		case cmd, ok := <-cmds:
			if !ok || cmd.Op == "stop" {
				break loop
			}
			switch cmd.Op {
			case "blackhole":
				n.blackhole(cmd.Duration)
			case "inventory":
				startMu.Lock()
				for i, a := range agents {
					if started[i] && rng.Float64() < cmd.Share {
						a.m.Change()
						a.link.CheckInventory()
						c.invChanges.Add(1)
					}
				}
				startMu.Unlock()
			}
		}
	}
	// Stop: no agent starts any more; every link ends; then the spools
	// say what the relay acknowledged.
	startMu.Lock()
	stopAgents()
	startMu.Unlock()
	<-enrollDone
	running.Wait()
	final := workerMsg{Type: "final", Stats: stats()}
	for i, a := range agents {
		r := AgentReport{Index: a.index, Hostname: a.m.hostname}
		if started[i] {
			r.DeviceID = a.st.DeviceID
			r.AckedUpTo, r.Issued = a.ackedUpTo()
			a.sp.Close()
		} else {
			r.Error = "not enrolled"
		}
		final.Agents = append(final.Agents, r)
	}
	final.Stats.Connected = 0
	final.Stats.Acked = 0
	for _, r := range final.Agents {
		final.Stats.Acked += r.AckedUpTo
	}
	errMu.Lock()
	final.Errors = errs
	errMu.Unlock()
	emit(final)
	return nil
}

// quietHandler logs only errors, and only the first few of each message,
// so that thousands of agents reconnecting at once do not flood the
// terminal: the summary has the counts.
type quietHandler struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	seen   map[string]int
}

func newQuietHandler(w io.Writer, prefix string) *quietHandler {
	return &quietHandler{mu: &sync.Mutex{}, w: w, prefix: prefix, seen: map[string]int{}}
}

const quietRepeats = 3

func (h *quietHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *quietHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen[r.Message]++
	n := h.seen[r.Message]
	if n > quietRepeats {
		return nil
	}
	line := h.prefix + r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			line += ": " + a.Value.String()
		}
		return true
	})
	if n == quietRepeats {
		line += " (further lines like this one are not shown)"
	}
	_, err := fmt.Fprintln(h.w, line)
	return err
}
func (h *quietHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *quietHandler) WithGroup(string) slog.Handler      { return h }
