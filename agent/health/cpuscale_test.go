package health

import (
	"bufio"
	"math"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/proctab"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// TestTopCPUScale checks the scale of a process's cpu_percent: percent of
// one core, as top shows it.
func TestTopCPUScale(t *testing.T) {
	s := &Sampler{opts: Options{TopN: 5}.withDefaults(), numCPU: 4, procs: newProcReader()}
	a, b, c := procKey{pid: 1, start: 1}, procKey{pid: 2, start: 1}, procKey{pid: 3, start: 1}
	prev := map[procKey]procSample{a: {cpu: time.Second, name: "one"}, b: {cpu: time.Second, name: "two"}}
	cur := map[procKey]procSample{
		a: {cpu: 2 * time.Second, name: "one"},  // one core for 1 s
		b: {cpu: 3 * time.Second, name: "two"},  // two cores
		c: {cpu: 10 * time.Second, name: "new"}, // new since prev, more than the machine can: clamped
	}
	hs := &desksidev1.HealthSample{}
	s.topProcesses(hs, prev, cur, time.Second)
	want := map[string]float64{"one": 100, "two": 200, "new": 400}
	if len(hs.GetTopCpu()) != len(want) {
		t.Fatalf("top_cpu %v", hs.GetTopCpu())
	}
	for _, p := range hs.GetTopCpu() {
		if p.GetCpuPercent() != want[p.GetName()] {
			t.Errorf("%s: cpu %v%%, want %v%%", p.GetName(), p.GetCpuPercent(), want[p.GetName()])
		}
	}
}

// TestBurnOneCore runs a process that keeps one core busy and checks that
// the sampler reports it near 100 (percent of one core), whatever the
// number of CPUs.
func TestBurnOneCore(t *testing.T) {
	if os.Getenv("DESKSIDE_TEST_BURN") == "1" {
		burn()
		return
	}
	if runtime.GOOS != "linux" && runtime.GOOS != "windows" {
		t.Skip("process CPU is read on Linux and Windows without cgo")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBurnOneCore$")
	cmd.Env = append(os.Environ(), "DESKSIDE_TEST_BURN=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the burner stops at end of input
		_ = cmd.Wait()
	})
	pid := cmd.Process.Pid

	s := NewSampler(nil, Options{TopN: MaxTopN, PrimeInterval: 500 * time.Millisecond})
	before, err := proctab.Read(pid)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	hs, err := s.Sample(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	after, err := proctab.Read(pid)
	if err != nil {
		t.Fatal(err)
	}
	// What the burner used over a window slightly longer than the
	// sampler's, on the same scale: what the machine let it have.
	got := -1.0
	for _, p := range hs.GetTopCpu() {
		if int(p.GetPid()) == pid {
			got = p.GetCpuPercent()
		}
	}
	had := proctab.CPUPercent(before.CPU, after.CPU, time.Since(t0))
	t.Logf("burner: sampler %.1f %% of one core, measured %.1f %%, %d CPUs", got, had, runtime.NumCPU())
	if got < 0 {
		t.Fatalf("burner (pid %d) not in top_cpu %v", pid, hs.GetTopCpu())
	}
	if math.Abs(got-had) > 15+0.25*had {
		t.Errorf("sampler says %.1f %%, the burner used %.1f %% of one core", got, had)
	}
	if had >= 80 && (got < 60 || got > 130) {
		t.Errorf("a process burning one core shows %.1f %%, want about 100", got)
	}
}

// burn keeps one core busy until its input ends, or 30 s at most.
func burn() {
	var stop atomic.Bool
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString(0)
		stop.Store(true)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		if i%(1<<20) == 0 && (stop.Load() || time.Now().After(deadline)) {
			return
		}
	}
}
