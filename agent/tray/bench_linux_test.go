package tray_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkTrayIdle measures the built deskside-tray, idle: its RSS and
// CPU over a window (DESKSIDE_BENCH_IDLE, default 60 s) after start-up.
// It runs with no session D-Bus, so without a tray icon: the page server
// and the state loop, which is what runs in every case.
func BenchmarkTrayIdle(b *testing.B) {
	window := 60 * time.Second
	if v := os.Getenv("DESKSIDE_BENCH_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("DESKSIDE_BENCH_IDLE: %v", err)
		}
		window = d
	}
	bin := filepath.Join(b.TempDir(), "deskside-tray")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/deskside/deskside/agent/cmd/deskside-tray").CombinedOutput(); err != nil {
		b.Fatalf("build deskside-tray: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(b.TempDir(), "no-bus"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	time.Sleep(3 * time.Second)
	if !strings.Contains(stderr.String(), "Get help page stays available") {
		b.Fatalf("deskside-tray did not start as expected:\n%s", stderr.String())
	}
	pid := cmd.Process.Pid
	cpu0 := cpuTicks(b, pid)
	time.Sleep(window)
	cpu1 := cpuTicks(b, pid)
	b.ReportMetric(rssKB(b, pid)/1024, "RSS-MB")
	// Linux counts CPU time in 1/100 s ticks.
	b.ReportMetric(float64(cpu1-cpu0)*10*float64(time.Millisecond)/float64(window)*100, "CPU-%core")
	b.ReportMetric(0, "ns/op")
}

func cpuTicks(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func rssKB(b *testing.B, pid int) float64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return n
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
