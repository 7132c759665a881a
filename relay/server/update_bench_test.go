package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/agent/link"
	"github.com/deskside/deskside/agent/spool"
	"github.com/deskside/deskside/agent/update"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/updates"
)

// buildRelease builds the release the benchmark rolls out into dir: the
// real agent, stripped as `make build` builds it (about 21 MB), or with
// DESKSIDE_BENCH_RELEASE=small a Go program printing its version (2.4 MB)
// for a quick trial.
func buildRelease(b *testing.B, dir, version string) []byte {
	b.Helper()
	out := filepath.Join(dir, "release")
	var cmd *exec.Cmd
	if os.Getenv("DESKSIDE_BENCH_RELEASE") == "small" {
		src := filepath.Join(dir, "main.go")
		if err := os.WriteFile(src, []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"deskside bench release "+version+"\") }\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		cmd = exec.Command("go", "build", "-trimpath", "-o", out, src)
		cmd.Dir = dir
	} else {
		cmd = exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", out, "github.com/deskside/deskside/agent/cmd/deskside-agent")
	}
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build the release: %v\n%s", err, o)
	}
	exe, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(exe))/1e6, "release-MB")
	return exe
}

// benchAgent is one simulated endpoint: the real agent link and the real
// updater on an executable of its own. An install "restarts" it as the
// service manager would: the link stops, the updater of the new version
// counts the start, and a link of the new version connects and confirms
// at its Welcome.
type benchAgent struct {
	st      *enroll.State
	exe     string
	relayed atomic.Bool // the new version reached the relay (Welcome)

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// run starts the link of version; installed is called (once per run)
// when it installed an update.
func (a *benchAgent) run(version string, installed func()) error {
	u := &update.Updater{Dir: a.st.Dir, Exe: a.exe, Version: version}
	if _, err := u.Start(); err != nil {
		return err
	}
	sp, err := spool.Open(filepath.Join(a.st.Dir, "spool"), 0)
	if err != nil {
		return err
	}
	l, err := link.New(link.Config{
		State: a.st, Spool: sp, Inventory: &fakeInventory{inv: sampleInventory()}, Health: fakeSampler{}, HealthInterval: time.Hour,
		Hostname: "bench-" + a.st.DeviceID[:8], Version: version, Logger: servertest.DiscardLogger(),
		Backoff: link.Backoff{Base: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, Max: time.Second},
		Updates: u, OnUpdateInstalled: installed,
		LastUpdate: func() *desksidev1.UpdateStatus {
			if o := update.Last(a.st.Dir); o != nil && o.State == update.StateInstalled {
				return &desksidev1.UpdateStatus{Version: o.Version, State: desksidev1.UpdateState_UPDATE_STATE_INSTALLED}
			}
			return nil
		},
		OnConnected: func() {
			if u.Confirm() {
				a.relayed.Store(true)
			}
		},
	})
	if err != nil {
		sp.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.mu.Lock()
	a.cancel, a.done = cancel, done
	a.mu.Unlock()
	go func() {
		l.Run(ctx)
		sp.Close()
		close(done)
	}()
	return nil
}

func (a *benchAgent) stop() {
	a.mu.Lock()
	cancel, done := a.cancel, a.done
	a.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// BenchmarkStagedUpdate1000 updates 1,000 agents from one relay: the relay
// binary in a process of its own (SQLite, TLS on loopback), 1,000 real
// agent links with the real updater in this process, each swapping the
// release into its own directory. It uploads a signed release through
// UpdateService, rolls it out to 10 %, waits until the relay counts those
// devices installed (they reconnect running the new version), then to
// 100 %, and waits for all. It reports the time of the 10 % stage, the
// total, and the relay process's CPU time over both (its own process, so
// the agents' work is not in it). Target: the whole update ≤ 5 min.
func BenchmarkStagedUpdate1000(b *testing.B) {
	agents := 1000
	if v := os.Getenv("DESKSIDE_BENCH_AGENTS"); v != "" { // a quick trial with fewer
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("DESKSIDE_BENCH_AGENTS=%q: a number of agents", v)
		}
		agents = n
	}
	const from, to = "v1.0.0", "v1.1.0"
	dir := b.TempDir()
	bin := buildBinary(b, dir, "github.com/deskside/deskside/relay/cmd/deskside-relay")
	exe := buildRelease(b, dir, to)
	p := startRelayProc(b, bin)
	cc, actx := p.signIn(b)
	us := desksidev1.NewUpdateServiceClient(cc)

	_, key, _ := ed25519.GenerateKey(rand.Reader)
	pin := envelope.Fingerprint(key.Public().(ed25519.PublicKey))
	rel, err := envelope.SignRelease(key, envelope.ReleaseManifestFor(exe, to, runtime.GOOS, runtime.GOARCH), time.Now())
	if err != nil {
		b.Fatal(err)
	}

	// Enroll and connect the fleet.
	start := time.Now()
	tok := p.token(b, uint32(agents))
	fleet := make([]*benchAgent, agents)
	inParallel(b, agents, 16, "enroll", func(i int) error {
		st, err := enroll.Enroll(context.Background(), enroll.Options{Relay: p.addr, Token: tok, StateDir: filepath.Join(dir, "agents", strconv.Itoa(i)),
			Hostname: fmt.Sprintf("bench-%04d", i), Version: from, MachineID: servertest.NewMachineID()})
		if err != nil {
			return err
		}
		a := &benchAgent{st: st, exe: filepath.Join(st.Dir, "deskside-agent")}
		if err := os.WriteFile(a.exe, []byte("agent "+from), 0o755); err != nil {
			return err
		}
		fleet[i] = a
		return update.Pin(st.Dir, pin)
	})
	b.Cleanup(func() {
		for _, a := range fleet {
			a.stop()
		}
	})
	restartErrs := make(chan error, agents)
	for _, a := range fleet {
		var once sync.Once
		installed := func() {
			// Restart into the new version from outside the link's
			// goroutine (stop waits for it), as the service manager does.
			once.Do(func() {
				go func() {
					a.stop()
					if err := a.run(to, nil); err != nil {
						restartErrs <- err
					}
				}()
			})
		}
		if err := a.run(from, installed); err != nil {
			b.Fatal(err)
		}
	}
	servertest.AwaitOnline(b, desksidev1.NewConsoleServiceClient(cc), actx, agents, 5*time.Minute)
	b.Logf("%d agents enrolled and connected in %s", agents, time.Since(start).Round(time.Millisecond))

	// Upload as `deskside release upload` does.
	up, err := us.UploadRelease(actx)
	if err != nil {
		b.Fatal(err)
	}
	up.Send(&desksidev1.UploadReleaseRequest{Release: rel})
	for off := 0; off < len(exe); off += 1 << 20 {
		up.Send(&desksidev1.UploadReleaseRequest{Data: exe[off:min(off+1<<20, len(exe))]})
	}
	if _, err := up.CloseAndRecv(); err != nil {
		b.Fatal(err)
	}

	ten := 0
	for _, a := range fleet {
		if updates.Bucket(a.st.DeviceID) < 1000 {
			ten++
		}
	}
	// wait returns when want agents run the new version and the relay
	// counts want devices installed.
	wait := func(stage string, want int) {
		b.Helper()
		deadline := time.Now().Add(10 * time.Minute)
		for {
			select {
			case err := <-restartErrs:
				b.Fatalf("restart into %s: %v", to, err)
			default:
			}
			n := 0
			for _, a := range fleet {
				if a.relayed.Load() {
					n++
				}
			}
			if n >= want {
				res, err := us.GetUpdates(actx, &desksidev1.GetUpdatesRequest{})
				if err != nil {
					b.Fatal(err)
				}
				got := 0
				for _, d := range res.GetDevices() {
					if d.GetStatus().GetVersion() == to && d.GetStatus().GetState() == desksidev1.UpdateState_UPDATE_STATE_INSTALLED {
						got++
					}
				}
				if got == want {
					return
				}
				if got > want {
					b.Fatalf("%s: the relay counts %d installed, want %d", stage, got, want)
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s: %d of %d agents updated after 10 minutes", stage, n, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	pid := p.cmd.Process.Pid
	cpu0 := procCPU(b, pid)
	start = time.Now()
	if _, err := us.StartRollout(actx, &desksidev1.StartRolloutRequest{Version: to, Os: runtime.GOOS, Arch: runtime.GOARCH, Percent: 10}); err != nil {
		b.Fatal(err)
	}
	wait("10 %", ten)
	stage1 := time.Since(start)
	cpu1 := procCPU(b, pid)
	if _, err := us.StartRollout(actx, &desksidev1.StartRolloutRequest{Version: to, Os: runtime.GOOS, Arch: runtime.GOARCH, Percent: 100}); err != nil {
		b.Fatal(err)
	}
	wait("100 %", agents)
	total := time.Since(start)
	cpu2 := procCPU(b, pid)

	// Every agent's executable is the release, byte for byte.
	for _, a := range fleet {
		got, err := os.ReadFile(a.exe)
		if err != nil || len(got) != len(exe) || string(got) != string(exe) {
			b.Fatalf("%s: the executable is not the release (%d bytes, %v)", a.st.DeviceID, len(got), err)
		}
	}
	b.Logf("release %.1f MB; %d devices in the 10 %% stage: %s; all %d: %s; relay CPU %s (10 %%: %s)",
		float64(len(exe))/1e6, ten, stage1.Round(time.Millisecond), agents, total.Round(time.Millisecond), cpu2-cpu0, cpu1-cpu0)
	b.ReportMetric(stage1.Seconds(), "stage10-s")
	b.ReportMetric(total.Seconds(), "total-s")
	b.ReportMetric((cpu2 - cpu0).Seconds(), "relay-CPU-s")
	b.ReportMetric(float64(cpu2-cpu0)/float64(total)*100, "relay-CPU-%core")
	b.ReportMetric(float64(len(exe))/1e6, "release-MB")
	b.ReportMetric(0, "ns/op")
}
