package health

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// TestSampleSane takes two samples of the real machine a short time apart
// and checks that every reading is in range.
func TestSampleSane(t *testing.T) {
	const topN = 3
	s := NewSampler(nil, Options{TopN: topN, PrimeInterval: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Keep a core busy so the top-CPU list has something in it.
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; !stop.Load(); n++ {
		}
	}()
	defer func() { stop.Store(true); <-done }()

	for i := range 2 {
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		hs, err := s.Sample(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if testing.Verbose() {
			t.Logf("sample %d:\n%s", i, prototext.Format(hs))
		}
		checkSample(t, hs, topN)
	}
}

func checkSample(t *testing.T, hs *desksidev1.HealthSample, topN int) {
	t.Helper()
	ncpu := float64(runtime.NumCPU())
	if c := hs.GetCpuPercent(); c < 0 || c > 100*ncpu {
		t.Errorf("cpu %v%%", c)
	}
	if hs.GetId() != 0 {
		t.Errorf("id %d set; the agent assigns it", hs.GetId())
	}
	if d := time.Since(hs.GetTime().AsTime()); d < 0 || d > time.Minute {
		t.Errorf("time %v", hs.GetTime().AsTime())
	}
	for _, l := range []float64{hs.GetLoad1(), hs.GetLoad5(), hs.GetLoad15()} {
		if l < 0 || l > 1000*ncpu {
			t.Errorf("load %v", l)
		}
	}
	total := hs.GetMemTotalBytes()
	if total == 0 || hs.GetMemUsedBytes()+hs.GetMemAvailableBytes() > total+total/100 {
		t.Errorf("memory used %d + available %d vs total %d", hs.GetMemUsedBytes(), hs.GetMemAvailableBytes(), total)
	}
	if hs.GetSwapUsedBytes() > hs.GetSwapTotalBytes() {
		t.Errorf("swap used %d > total %d", hs.GetSwapUsedBytes(), hs.GetSwapTotalBytes())
	}
	root := false
	for _, m := range hs.GetMounts() {
		root = root || m.GetMountpoint() == "/"
		if p := m.GetUsedPercent(); p < 0 || p > 100 || m.GetFreeBytes() > m.GetTotalBytes() {
			t.Errorf("mount %v", m)
		}
	}
	if !root {
		t.Errorf("no / in mounts %v", hs.GetMounts())
	}
	if hs.GetNetRxBytesPerSec() < 0 || hs.GetNetTxBytesPerSec() < 0 {
		t.Errorf("net rates %v %v", hs.GetNetRxBytesPerSec(), hs.GetNetTxBytesPerSec())
	}
	checkTop(t, "top_cpu", hs.GetTopCpu(), topN, func(p *desksidev1.ProcessUsage) float64 { return p.GetCpuPercent() })
	checkTop(t, "top_memory", hs.GetTopMemory(), topN, func(p *desksidev1.ProcessUsage) float64 { return float64(p.GetRssBytes()) })
	if len(hs.GetTopMemory()) == 0 {
		t.Error("empty top_memory")
	}
	if len(hs.GetTopCpu()) == 0 {
		t.Error("empty top_cpu while a goroutine spins")
	}
	for _, p := range hs.GetTopCpu() {
		if c := p.GetCpuPercent(); c <= 0 || c > 100*ncpu {
			t.Errorf("process cpu %v", p)
		}
	}
	for _, tp := range hs.GetTemperatures() {
		if tp.GetSensor() == "" {
			t.Errorf("temperature %v", tp)
		}
	}
}

func checkTop(t *testing.T, what string, l []*desksidev1.ProcessUsage, n int, key func(*desksidev1.ProcessUsage) float64) {
	t.Helper()
	if len(l) > n {
		t.Errorf("%s has %d entries, want <= %d", what, len(l), n)
	}
	for i, p := range l {
		if p.GetPid() <= 0 || p.GetName() == "" {
			t.Errorf("%s[%d] = %v", what, i, p)
		}
		if i > 0 && key(p) > key(l[i-1]) {
			t.Errorf("%s not sorted descending: %v after %v", what, p, l[i-1])
		}
	}
}

func TestSampleCanceled(t *testing.T) {
	s := NewSampler(nil, Options{PrimeInterval: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Sample(ctx); err == nil {
		t.Fatal("Sample returned no error for a done context")
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.TopN != DefaultTopN || o.PrimeInterval != DefaultPrimeInterval || o.IncludeMount == nil {
		t.Errorf("defaults %+v", o)
	}
	if o := (Options{TopN: 1000}).withDefaults(); o.TopN != MaxTopN {
		t.Errorf("TopN 1000 became %d, want %d", o.TopN, MaxTopN)
	}
	for _, tt := range []struct {
		mp, fs string
		want   bool
	}{{"/", "overlay", true}, {"/home", "ext4", true}, {"/proc", "proc", false}, {"/sys/fs/cgroup", "cgroup2", false}, {"/snap/core/1", "squashfs", false}} {
		if got := DefaultIncludeMount(tt.mp, tt.fs); got != tt.want {
			t.Errorf("DefaultIncludeMount(%q, %q) = %v", tt.mp, tt.fs, got)
		}
	}
}

func TestNetRates(t *testing.T) {
	prev := map[string]netCounters{"eth0": {100, 1000}, "wlan0": {5000, 5000}, "gone": {1, 1}}
	cur := map[string]netCounters{"eth0": {300, 1400}, "wlan0": {10, 10}, "new": {9999, 9999}}
	rx, tx := netRates(prev, cur, 2)
	if rx != 100 || tx != 200 {
		t.Errorf("rates %v %v, want 100 200 (reset and new interfaces ignored)", rx, tx)
	}
}
