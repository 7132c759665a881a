package tray

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

	"github.com/godbus/dbus/v5"
)

// BenchmarkTrayIdle measures the built deskside-tray, idle: its RSS and
// CPU over a window (DESKSIDE_BENCH_IDLE, default 60 s) after start-up,
// with its icon registered with a tray host on a private session bus
// (the page server, the state loop and the icon).
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
	addr := startSessionBus(b)
	host, err := dbus.Connect(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer host.Close()
	w := hostTray(b, host)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	time.Sleep(3 * time.Second)
	w.mu.Lock()
	registered := len(w.items)
	w.mu.Unlock()
	if registered != 1 {
		b.Fatalf("deskside-tray did not register its icon with the tray host:\n%s", stderr.String())
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
