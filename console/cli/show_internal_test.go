package cli

import (
	"strings"
	"testing"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// Per-process CPU is on top's scale (a busy core is 100 %) and says so;
// the machine's CPU is a share of all cores; mount use is df's.
func TestHealthLabels(t *testing.T) {
	var b strings.Builder
	writeHealth(&b, &desksidev1.HealthSample{
		CpuPercent: 30,
		TopCpu:     []*desksidev1.ProcessUsage{{Pid: 42, Name: "spin", User: "root", CpuPercent: 180}},
		Mounts:     []*desksidev1.MountUsage{{Mountpoint: "/", UsedPercent: 16.3, FreeBytes: 77 << 30, TotalBytes: 252 << 30}},
	}, time.Now())
	out := b.String()
	for _, want := range []string{"CPU:", "30.0% of all cores", "CPU (1 core = 100%)", "180.0%", "17%", "77 GiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("health lacks %q:\n%s", want, out)
		}
	}
}
