package diag

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// Facts about the machine the tests run on, read independently of the
// code under test, so that each expectation below says why it holds.

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func onPath(tool string) bool { _, err := exec.LookPath(tool); return err == nil }

func loadAvgFact(t *testing.T) (l1, l5 float64) {
	b, err := os.ReadFile("/proc/loadavg")
	testkit.Need(t, "/proc/loadavg", err, "run the tests where /proc is mounted")
	f := strings.Fields(string(b))
	l1, _ = strconv.ParseFloat(f[0], 64)
	l5, _ = strconv.ParseFloat(f[1], 64)
	return l1, l5
}

func swapTotalFact(t *testing.T) uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	testkit.Need(t, "/proc/meminfo", err, "run the tests where /proc is mounted")
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "SwapTotal:" {
			n, _ := strconv.ParseUint(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func journalFilesFact() bool {
	for _, pat := range []string{"/var/log/journal/*/*.journal", "/run/log/journal/*/*.journal", "/var/log/journal/*.journal", "/run/log/journal/*.journal"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return true
		}
	}
	return false
}

// ipv4GatewayFact returns the first IPv4 default gateway of
// /proc/net/route as "a.b.c.d via iface".
func ipv4GatewayFact() string {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" || f[2] == "00000000" {
			continue
		}
		v, _ := strconv.ParseUint(f[2], 16, 32)
		var a [4]byte
		binary.NativeEndian.PutUint32(a[:], uint32(v))
		return netip.AddrFrom4(a).String() + " via " + f[0]
	}
	return ""
}

func clockSyncedFact() bool {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	return err == nil && tx.Status&0x40 == 0 && state != unix.TIME_ERROR
}

// TestTriageOnThisMachine runs every check at once on this machine with
// the default budget: the whole triage must finish within it, no check may
// be abandoned, every string must be capped, the goroutines of the run
// must end, and each check meets the expectation written for this machine
// (a Debian 12 VM with eth0 up, no systemd as PID 1, no journal, no
// smartctl, no swap, an unsynchronised kernel clock and apt package lists
// newer than the installed packages).
func TestTriageOnThisMachine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every check, about 2 s")
	}
	testkit.CheckGoroutines(t)
	start := time.Now()
	// A generous budget: this test checks what the checks find, not how
	// fast (BenchmarkTriage measures that); a loaded CI machine can make
	// apt-get take several seconds.
	const budget = 45 * time.Second
	rep := New(Options{Logger: testLogger(t)}).Run(t.Context(), &desksidev1.RunChecks{Budget: durationpb.New(budget)})
	took := time.Since(start)
	if took > budget+200*time.Millisecond {
		t.Errorf("triage took %v, budget %v", took, budget)
	}
	t.Logf("triage: %v in %v", rep.GetOverall(), took)
	if len(rep.GetResults()) != len(builtin) {
		t.Fatalf("%d results, want %d", len(rep.GetResults()), len(builtin))
	}
	for _, res := range rep.GetResults() {
		t.Log(describe(res))
		if strings.HasPrefix(res.GetSummary(), "did not finish") {
			t.Errorf("%s did not finish within the budget", res.GetName())
		}
		if res.GetDuration() == nil || res.GetStatus() == desksidev1.CheckStatus_CHECK_STATUS_UNSPECIFIED || res.GetSummary() == "" {
			t.Errorf("%s: incomplete result", res.GetName())
		}
		if (res.GetStatus() == statusWarn || res.GetStatus() == statusFail) && res.GetHint() == "" {
			t.Errorf("%s: %v without a hint", res.GetName(), res.GetStatus())
		}
		for _, e := range res.GetEvidence() {
			if utf8.RuneCountInString(e.GetValue()) > maxValueRunes || strings.ContainsAny(e.GetValue(), "\n\r\t\x1b") {
				t.Errorf("%s: evidence %q not capped or cleaned", res.GetName(), e.GetKey())
			}
		}
	}
	if got, want := rep.GetOverall(), worst(rep.GetResults()); got != want {
		t.Errorf("overall %v, want the worst %v", got, want)
	}

	is := func(want ...desksidev1.CheckStatus) func(*desksidev1.CheckResult) error {
		return func(r *desksidev1.CheckResult) error {
			if !slices.Contains(want, r.GetStatus()) {
				return fmt.Errorf("status %v, want one of %v", r.GetStatus(), want)
			}
			return nil
		}
	}
	unavailableWith := func(summary string) func(*desksidev1.CheckResult) error {
		return func(r *desksidev1.CheckResult) error {
			if r.GetStatus() != statusUnavailable || r.GetSummary() != summary {
				return fmt.Errorf("want UNAVAILABLE %q", summary)
			}
			return nil
		}
	}
	ran := is(statusPass, statusWarn, statusFail)
	expect := map[string]func(*desksidev1.CheckResult) error{
		// eth0 is up with 192.0.2.2/24 (and fd00::2/64).
		"network.interfaces": is(statusPass),
		// Set below from the routing table.
		"network.gateway": nil,
		// No relay configured: the name is "localhost", in /etc/hosts.
		"network.dns": is(statusPass),
		// No relay configured and no https_url: nothing to reach.
		"network.https": unavailableWith("no URL configured (no https_url, and the agent knows no relay)"),
		// Informational, always passes.
		"network.proxy": is(statusPass),
		// / is an ext4 about 20 % full with 3 % of its inodes used; the
		// other mounts are pseudo file systems.
		"disk.space":  is(statusPass),
		"disk.inodes": is(statusPass),
		// 24 GiB, about 5 % used; PSI is all zeros.
		"memory.pressure": is(statusPass),
		// Load and CPU use depend on what else runs on this 2-vCPU VM
		// (other builds): they must run, the verdict is not fixed.
		"cpu.load": ran,
		"cpu.hogs": ran,
		// Booted minutes or hours before the tests, not 30 days.
		"system.uptime": is(statusPass),
	}
	if swapTotalFact(t) == 0 {
		expect["memory.swap"] = is(statusPass) // no swap configured here
	} else {
		expect["memory.swap"] = ran
	}
	if onPath("smartctl") {
		expect["disk.smart"] = is(statusPass, statusWarn, statusFail, statusUnavailable)
	} else {
		expect["disk.smart"] = unavailableWith("smartctl is not installed (apt install smartmontools)")
	}
	if fileExists("/run/systemd/system") {
		expect["services.failed"] = is(statusPass, statusFail)
	} else { // PID 1 is not systemd on this VM
		expect["services.failed"] = unavailableWith(ErrNoSystemd.Error())
	}
	switch {
	case !onPath("journalctl"):
		expect["logs.errors"] = unavailableWith("journalctl is not installed")
	case !journalFilesFact(): // /var/log/journal exists but is empty here
		expect["logs.errors"] = unavailableWith(ErrNoJournal.Error())
	default:
		expect["logs.errors"] = is(statusPass, statusWarn)
	}
	if fileExists("/var/lib/dpkg/status") && onPath("apt-get") {
		// The image's package lists are newer than its packages: about
		// a hundred upgrades pending, hence WARN; consistent either way.
		expect["updates.pending"] = func(r *desksidev1.CheckResult) error {
			n, _ := evidence(r, "pending")
			want := statusWarn
			if n == "0" {
				want = statusPass
			}
			if pm, _ := evidence(r, "package manager"); pm != "apt" || r.GetStatus() != want {
				return fmt.Errorf("want %v from apt with %s pending", want, n)
			}
			return nil
		}
		// Debian records pending reboots; none is recorded here.
		if fileExists("/var/run/reboot-required") {
			expect["updates.reboot"] = is(statusWarn)
		} else {
			expect["updates.reboot"] = is(statusPass)
		}
	} else {
		expect["updates.pending"] = is(statusPass, statusWarn, statusUnavailable)
		expect["updates.reboot"] = is(statusPass, statusWarn, statusUnavailable)
	}
	if clockSyncedFact() {
		expect["time.sync"] = is(statusPass, statusWarn)
	} else { // no NTP client in this VM: the kernel says STA_UNSYNC
		expect["time.sync"] = is(statusWarn)
	}
	if gw := ipv4GatewayFact(); gw != "" {
		// 192.0.2.1 via eth0 has a complete ARP entry (and refuses TCP
		// 53/80, which also proves it answers). The IPv6 gateway fd00::1
		// has a FAILED neighbour entry here, so the check may warn.
		expect["network.gateway"] = func(r *desksidev1.CheckResult) error {
			if err := is(statusPass, statusWarn)(r); err != nil {
				return err
			}
			for _, e := range r.GetEvidence() {
				if strings.HasPrefix(e.GetKey(), "gateway "+gw) && strings.HasPrefix(e.GetValue(), "answers") {
					return nil
				}
			}
			return fmt.Errorf("IPv4 gateway %s not reported as answering", gw)
		}
	} else {
		expect["network.gateway"] = is(statusFail, statusWarn, statusPass)
	}

	for name, check := range expect {
		res := resultOf(t, rep, name)
		if err := check(res); err != nil {
			t.Errorf("%s: %v\n%s", name, err, describe(res))
		}
	}
}

// TestForcedThresholds lowers thresholds until this machine crosses them.
func TestForcedThresholds(t *testing.T) {
	l1, l5 := loadAvgFact(t)
	tests := []struct {
		name  string
		check string
		cfg   *desksidev1.CheckConfig
		want  desksidev1.CheckStatus
		skip  string
	}{
		{name: "load warn", check: "cpu.load", cfg: &desksidev1.CheckConfig{LoadWarnPerCore: 0.0001, LoadFailPerCore: 1e6}, want: statusWarn,
			skip: skipIf(l1 == 0 && l5 == 0, "load average is 0.00")},
		{name: "load fail", check: "cpu.load", cfg: &desksidev1.CheckConfig{LoadWarnPerCore: 0.00005, LoadFailPerCore: 0.0001}, want: statusFail,
			skip: skipIf(l5 < 0.01, "5-minute load average is 0.00")},
		{name: "memory warn", check: "memory.pressure", cfg: &desksidev1.CheckConfig{MemoryWarnPercent: 0.0001, MemoryFailPercent: 100}, want: statusWarn},
		{name: "memory fail", check: "memory.pressure", cfg: &desksidev1.CheckConfig{MemoryWarnPercent: 0.0001, MemoryFailPercent: 0.0002}, want: statusFail},
		{name: "disk warn", check: "disk.space", cfg: &desksidev1.CheckConfig{DiskWarnPercent: 0.0001, DiskFailPercent: 100}, want: statusWarn},
		{name: "disk fail", check: "disk.space", cfg: &desksidev1.CheckConfig{DiskWarnPercent: 0.0001, DiskFailPercent: 0.0002}, want: statusFail},
		{name: "inodes warn", check: "disk.inodes", cfg: &desksidev1.CheckConfig{InodeWarnPercent: 0.0001, InodeFailPercent: 100}, want: statusWarn},
		{name: "inodes fail", check: "disk.inodes", cfg: &desksidev1.CheckConfig{InodeWarnPercent: 0.0001, InodeFailPercent: 0.0002}, want: statusFail},
		{name: "uptime", check: "system.uptime", cfg: &desksidev1.CheckConfig{UptimeWarn: durationpb.New(time.Nanosecond)}, want: statusWarn},
		{name: "swap", check: "memory.swap", cfg: &desksidev1.CheckConfig{SwapWarnPercent: 0.0001}, want: statusPass,
			skip: skipIf(swapTotalFact(t) != 0, "this machine has swap; the no-swap pass is what is tested")},
	}
	r := New(Options{Logger: testLogger(t)})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip != "" {
				t.Skip(tt.skip)
			}
			res := resultOf(t, r.Run(t.Context(), &desksidev1.RunChecks{Checks: []string{tt.check}, Config: tt.cfg}), tt.check)
			if res.GetStatus() != tt.want {
				t.Errorf("got %s, want %v", describe(res), tt.want)
			}
		})
	}
}

func skipIf(cond bool, why string) string {
	if cond {
		return why
	}
	return ""
}

// TestCPUHogIsReported spins two goroutines of this test process and
// expects cpu.hogs to name it.
func TestCPUHogIsReported(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs so the spinning does not starve the check")
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for !stop.Load() { // spin: this is the hog
			}
		})
	}
	defer wg.Wait()
	defer stop.Store(true)
	// Two spinning goroutines use up to two cores; 10 % of one is enough
	// to tell the hog even when other test packages load the machine (it
	// measured 24 % at a load of 17 on two cores).
	res := resultOf(t, New(Options{}).Run(t.Context(), &desksidev1.RunChecks{
		Checks: []string{"cpu.hogs"},
		Config: &desksidev1.CheckConfig{CpuHogPercent: 10},
	}), "cpu.hogs")
	// The summary names the top three; every process above the
	// threshold is in the evidence, under "pid N".
	self := fmt.Sprintf("pid %d", os.Getpid())
	listed := slices.ContainsFunc(res.GetEvidence(), func(e *desksidev1.CheckEvidence) bool { return e.GetKey() == self })
	if res.GetStatus() != statusWarn || !listed {
		t.Errorf("got %s, want WARN with %s in the evidence", describe(res), self)
	}
}

// TestDiskNearlyFullTmpfs mounts a 1 MiB tmpfs with 64 inodes, fills it
// to about 99 % of both, and expects disk.space and disk.inodes to fail
// on it. Mounting needs root (CAP_SYS_ADMIN); elsewhere the test is
// skipped and TestEvalSpaceThresholds covers the decision.
func TestDiskNearlyFullTmpfs(t *testing.T) {
	dir := t.TempDir()
	err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=1m,nr_inodes=64,mode=0700")
	testkit.Need(t, "mounting a tmpfs", err, "run the tests as root or with CAP_SYS_ADMIN (sudo -E go test ./agent/diag), as CI does")
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	size := st.Blocks * uint64(st.Bsize)
	if err := os.WriteFile(filepath.Join(dir, "fill"), make([]byte, size*99/100), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	for i := range int(st.Ffree) - 1 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	r := New(Options{Logger: testLogger(t), ExtraMounts: []string{dir}})
	rep := r.Run(t.Context(), &desksidev1.RunChecks{Checks: []string{"disk.space", "disk.inodes"}})
	for _, name := range []string{"disk.space", "disk.inodes"} {
		res := resultOf(t, rep, name)
		t.Log(describe(res))
		if res.GetStatus() != statusFail || !strings.Contains(res.GetSummary(), dir) {
			t.Errorf("got %s\nwant FAIL naming %s", describe(res), dir)
		}
		if v, ok := evidence(res, dir); !ok || !strings.HasPrefix(v, "9") || !strings.Contains(v, "tmpfs") {
			t.Errorf("%s: evidence for %s = %q", name, dir, v)
		}
		if v, ok := evidence(res, "/"); !ok || v == "" {
			t.Errorf("%s: / missing from the evidence", name)
		}
	}

	// Without ExtraMounts the tmpfs is a pseudo file system: skipped.
	res := resultOf(t, New(Options{}).Run(t.Context(), &desksidev1.RunChecks{Checks: []string{"disk.space"}}), "disk.space")
	if _, ok := evidence(res, dir); ok {
		t.Errorf("tmpfs reported without being asked for: %s", describe(res))
	}
}

func TestRouteParsing(t *testing.T) {
	route := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
		"eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
		"wg0\t00000000\t00000000\t0001\t0\t0\t50\t00000000\t0\t0\t0\n" +
		"eth1\t00000000\t0101A8C0\t0203\t0\t0\t0\t00000000\t0\t0\t0\n"
	var gw [4]byte
	binary.NativeEndian.PutUint32(gw[:], 0x010200C0)
	got := parseRoute4([]byte(route))
	want := []gateway{{addr: netip.AddrFrom4(gw), iface: "eth0", metric: 100}, {iface: "wg0", metric: 50}}
	if !slices.Equal(got, want) {
		t.Errorf("ipv4 %v, want %v", got, want)
	}

	route6 := "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n" +
		"00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0\n" +
		"00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
	got6 := parseRoute6([]byte(route6))
	if want := []gateway{{addr: netip.MustParseAddr("fd00::1"), iface: "eth0", metric: 1024}}; !slices.Equal(got6, want) {
		t.Errorf("ipv6 %v, want %v", got6, want)
	}

	arp := "IP address       HW type     Flags       HW address            Mask     Device\n" +
		"192.0.2.1        0x1         0x2         02:fc:00:00:00:05     *        eth0\n" +
		"192.0.2.9        0x1         0x0         00:00:00:00:00:00     *        eth0\n"
	tests := []struct {
		ip, dev  string
		complete bool
		state    string
	}{
		{"192.0.2.1", "eth0", true, "complete, 02:fc:00:00:00:05"},
		{"192.0.2.9", "eth0", false, "incomplete"},
		{"192.0.2.1", "eth1", false, "absent"},
	}
	for _, tt := range tests {
		n := parseARP([]byte(arp), netip.MustParseAddr(tt.ip), tt.dev)
		if n.complete != tt.complete || n.state != tt.state {
			t.Errorf("arp %s on %s = %+v", tt.ip, tt.dev, n)
		}
	}
}

// nlNeigh builds one RTM_NEWNEIGH message as the kernel sends it.
func nlNeigh(ifindex int32, state uint16, dst netip.Addr) []byte {
	a := dst.AsSlice()
	attr := make([]byte, 4+len(a))
	binary.NativeEndian.PutUint16(attr[0:], uint16(len(attr)))
	binary.NativeEndian.PutUint16(attr[2:], unix.NDA_DST)
	copy(attr[4:], a)
	nd := make([]byte, unix.SizeofNdMsg)
	nd[0] = unix.AF_INET6
	binary.NativeEndian.PutUint32(nd[4:], uint32(ifindex))
	binary.NativeEndian.PutUint16(nd[8:], state)
	body := append(nd, attr...)
	h := make([]byte, unix.SizeofNlMsghdr)
	binary.NativeEndian.PutUint32(h[0:], uint32(len(h)+len(body)))
	binary.NativeEndian.PutUint16(h[4:], unix.RTM_NEWNEIGH)
	return append(h, body...)
}

func TestNeighbourParsing(t *testing.T) {
	gw := netip.MustParseAddr("fd00::1")
	tab := slices.Concat(
		nlNeigh(3, unix.NUD_REACHABLE, netip.MustParseAddr("fd00::9")),
		nlNeigh(2, unix.NUD_STALE, gw),
		nlNeigh(3, unix.NUD_FAILED, gw),
	)
	n, err := parseNeighbours(tab, gw, 3)
	if err != nil || n.complete || n.state != "FAILED" {
		t.Errorf("got %+v %v, want FAILED on ifindex 3", n, err)
	}
	n, err = parseNeighbours(tab, gw, 2)
	if err != nil || !n.complete || n.state != "STALE" {
		t.Errorf("got %+v %v, want STALE (complete) on ifindex 2", n, err)
	}
	if n, _ := parseNeighbours(tab, gw, 7); n.state != "absent" {
		t.Errorf("got %+v, want absent", n)
	}
}

func TestParsePSIAndEnvironment(t *testing.T) {
	p, err := parsePSI([]byte("some avg10=1.50 avg60=2.25 avg300=0.00 total=123\nfull avg10=0.50 avg60=12.00 avg300=0.00 total=45\n"))
	if err != nil || p != (memPSI{someAvg10: 1.5, someAvg60: 2.25, fullAvg10: 0.5, fullAvg60: 12}) {
		t.Errorf("psi %+v %v", p, err)
	}
	if _, err := parsePSI([]byte("garbage")); err == nil {
		t.Error("garbage PSI accepted")
	}
	env := parseEnvironment([]byte("PATH=\"/usr/bin\"\n# http_proxy=old\nhttp_proxy=\"http://p:3128\"\nexport NO_PROXY='localhost'\nHTTPS_PROXY = http://q:8080\n"))
	want := map[string]string{"http_proxy": "http://p:3128", "NO_PROXY": "localhost", "HTTPS_PROXY": "http://q:8080"}
	if fmt.Sprint(env) != fmt.Sprint(want) {
		t.Errorf("environment %v, want %v", env, want)
	}
}
