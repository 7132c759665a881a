package server_test

import (
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/deskside/deskside/agent/health"
	"github.com/deskside/deskside/agent/inventory"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// The inventory the relay stores for a real local agent (real collectors,
// real TLS) matches this machine.
func TestStoredInventoryMatchesThisMachine(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	st := r.mustEnroll(t)
	log := discardLogger()
	runAgent(t, st, agentOpts{inv: inventory.New(log), sampler: health.NewSampler(log, health.Options{}), interval: 200 * time.Millisecond})
	cs, ctx := r.admin(t)
	var d *desksidev1.GetDeviceResponse
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		var err error
		d, err = cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
		if err != nil {
			return err
		}
		if d.GetInventory() == nil || d.GetLatestHealth() == nil {
			return errNotYet
		}
		return nil
	})
	inv := d.GetInventory()

	host, _ := os.Hostname()
	if inv.GetHostname() != host {
		t.Errorf("hostname %q, machine %q", inv.GetHostname(), host)
	}

	meminfo, _ := os.ReadFile("/proc/meminfo")
	var memKB float64
	for _, l := range strings.Split(string(meminfo), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			memKB, _ = strconv.ParseFloat(strings.Fields(v)[0], 64)
		}
	}
	got := float64(inv.GetMemory().GetTotalBytes())
	if memKB == 0 || math.Abs(got-memKB*1024)/(memKB*1024) > 0.01 {
		t.Errorf("memory total %v bytes, /proc/meminfo %v kB", got, memKB)
	}
	if d.GetDevice().GetMemoryBytes() != inv.GetMemory().GetTotalBytes() {
		t.Errorf("fleet summary memory %d differs from inventory", d.GetDevice().GetMemoryBytes())
	}

	out, err := exec.Command("nproc").Output()
	if err != nil {
		t.Fatalf("nproc: %v", err)
	}
	nproc, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	if int(inv.GetCpu().GetThreads()) != nproc {
		t.Errorf("logical CPUs %d, nproc %d", inv.GetCpu().GetThreads(), nproc)
	}

	var sfs unix.Statfs_t
	if err := unix.Statfs("/", &sfs); err != nil {
		t.Fatal(err)
	}
	want := sfs.Blocks * uint64(sfs.Bsize)
	found := false
	for _, p := range inv.GetPartitions() {
		if p.GetMountpoint() == "/" {
			found = true
			if p.GetTotalBytes() != want {
				t.Errorf("root size %d, statfs %d", p.GetTotalBytes(), want)
			}
		}
	}
	if !found {
		t.Errorf("no / partition in %v", inv.GetPartitions())
	}
	if len(inv.GetSoftware()) == 0 {
		t.Error("no installed software reported")
	}
	if h := d.GetLatestHealth(); h.GetMemTotalBytes() == 0 || len(h.GetMounts()) == 0 {
		t.Errorf("latest health incomplete: %v", h)
	}
}
