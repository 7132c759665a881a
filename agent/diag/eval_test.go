package diag

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// The evaluators decide on synthetic readings, so every boundary is
// tested whatever the machine running the tests looks like.

func TestEvalSpaceThresholds(t *testing.T) {
	mount := func(mp string, used, free uint64) mountUsage {
		return mountUsage{mountpoint: mp, fstype: "ext4", device: "/dev/sda1", total: used + free + 5, used: used, free: free}
	}
	tests := []struct {
		name   string
		mounts []mountUsage
		want   desksidev1.CheckStatus
		inSum  string
	}{
		{"empty disk", []mountUsage{mount("/", 0, 100)}, statusPass, "fullest / at 0.0%"},
		{"just under warn", []mountUsage{mount("/", 8499, 1501)}, statusPass, "at 84.9%"},
		{"at warn", []mountUsage{mount("/", 85, 15)}, statusWarn, "/ 85.0%"},
		{"just under fail", []mountUsage{mount("/", 9499, 501)}, statusWarn, "filling up"},
		{"at fail", []mountUsage{mount("/", 95, 5)}, statusFail, "/ 95.0%"},
		{"full", []mountUsage{mount("/", 100, 0)}, statusFail, "almost full"},
		{"worst mount decides", []mountUsage{mount("/", 10, 90), mount("/home", 96, 4), mount("/var", 90, 10)}, statusFail, "/home 96.0%, /var 90.0%"},
		{"root reserve is not free space", []mountUsage{{mountpoint: "/", total: 100, used: 90, free: 5}}, statusWarn, "/ 94.7%"},
		{"unreadable mounts are evidence only", []mountUsage{mount("/", 1, 99), {mountpoint: "/mnt/nfs", err: errors.New("stale file handle")}}, statusPass, ""},
		{"nothing measurable", []mountUsage{{mountpoint: "/x"}}, statusUnavailable, "no file system"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := evalSpace(tt.mounts, 85, 95)
			p := r.proto("disk.space", 0)
			if r.status != tt.want || !strings.Contains(r.summary, tt.inSum) {
				t.Errorf("got %s\nwant %v with %q", describe(p), tt.want, tt.inSum)
			}
			if r.status != statusPass && r.status != statusUnavailable && r.hint == "" {
				t.Error("no hint")
			}
		})
	}
}

func TestEvalInodes(t *testing.T) {
	tests := []struct {
		name   string
		mounts []mountUsage
		want   desksidev1.CheckStatus
	}{
		{"fine", []mountUsage{{mountpoint: "/", inodesTotal: 1000, inodesUsed: 849}}, statusPass},
		{"warn", []mountUsage{{mountpoint: "/", inodesTotal: 1000, inodesUsed: 850}}, statusWarn},
		{"fail", []mountUsage{{mountpoint: "/", inodesTotal: 1000, inodesUsed: 950}}, statusFail},
		{"btrfs reports none: skipped", []mountUsage{{mountpoint: "/", used: 1, free: 1}, {mountpoint: "/boot", inodesTotal: 10, inodesUsed: 1}}, statusPass},
		{"none report inodes", []mountUsage{{mountpoint: "/", used: 1, free: 1}}, statusUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := evalInodes(tt.mounts, 85, 95); r.status != tt.want {
				t.Errorf("got %s, want %v", describe(r.proto("disk.inodes", 0)), tt.want)
			}
		})
	}
}

func TestEvalMemory(t *testing.T) {
	top := []procInfo{{pid: 42, name: "firefox", rss: 3 << 30}}
	tests := []struct {
		name string
		st   memState
		want desksidev1.CheckStatus
	}{
		{"plenty", memState{total: 100, available: 50, top: top}, statusPass},
		{"at warn", memState{total: 100, available: 10, top: top}, statusWarn},
		{"at fail", memState{total: 100, available: 3, top: top}, statusFail},
		{"stalling under the thresholds", memState{total: 100, available: 50, psi: &memPSI{fullAvg60: 12}}, statusWarn},
		{"light stalls", memState{total: 100, available: 50, psi: &memPSI{someAvg10: 30, fullAvg60: 9.9}}, statusPass},
		{"no size", memState{}, statusUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := evalMemory(tt.st, 90, 97)
			if r.status != tt.want {
				t.Errorf("got %s, want %v", describe(r.proto("memory.pressure", 0)), tt.want)
			}
			if r.status == statusWarn && len(tt.st.top) > 0 && !strings.Contains(r.hint, "firefox") {
				t.Errorf("hint %q does not name the largest process", r.hint)
			}
		})
	}
}

func TestEvalSwap(t *testing.T) {
	tests := []struct {
		total, used uint64
		want        desksidev1.CheckStatus
	}{
		{0, 0, statusPass}, {100, 49, statusPass}, {100, 50, statusWarn}, {100, 100, statusWarn},
	}
	for _, tt := range tests {
		if r := evalSwap(tt.total, tt.used, 50); r.status != tt.want {
			t.Errorf("swap %d/%d: got %v, want %v", tt.used, tt.total, r.status, tt.want)
		}
	}
}

func TestEvalLoad(t *testing.T) {
	tests := []struct {
		name string
		load [3]float64
		cpus int
		want desksidev1.CheckStatus
	}{
		{"idle", [3]float64{0.1, 0.1, 0.1}, 4, statusPass},
		{"5 min at warn", [3]float64{1, 6, 1}, 4, statusWarn},
		{"5 min at fail", [3]float64{1, 12, 1}, 4, statusFail},
		{"1 min spike only warns", [3]float64{40, 1, 1}, 4, statusWarn},
		{"no cpu count", [3]float64{1, 1, 1}, 0, statusPass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := evalLoad(tt.load, tt.cpus, 1.5, 3); r.status != tt.want {
				t.Errorf("got %s, want %v", describe(r.proto("cpu.load", 0)), tt.want)
			}
		})
	}
}

func TestEvalHogs(t *testing.T) {
	procs := []hog{
		{procInfo{pid: 10, name: "idle"}, 0.5},
		{procInfo{pid: 11, name: "spinner"}, 199},
		{procInfo{pid: 12, name: "busy"}, 89.9},
	}
	r := evalHogs(slices.Clone(procs), 90, time.Second)
	if r.status != statusWarn || !strings.Contains(r.summary, "spinner (pid 11) 199%") || strings.Contains(r.summary, "busy") {
		t.Errorf("got %s", describe(r.proto("cpu.hogs", 0)))
	}
	if r := evalHogs(slices.Clone(procs), 200, time.Second); r.status != statusPass || !strings.Contains(r.summary, "busiest: spinner") {
		t.Errorf("got %s", describe(r.proto("cpu.hogs", 0)))
	}
}

func TestEvalUptime(t *testing.T) {
	now := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	r := evalUptime(31*24*time.Hour, now, 30*24*time.Hour)
	if r.status != statusWarn || !strings.Contains(r.hint, "reboot") {
		t.Errorf("got %s", describe(r.proto("system.uptime", 0)))
	}
	if v, _ := evidence(r.proto("x", 0), "booted"); v != "2025-12-31T12:00:00Z" {
		t.Errorf("booted %q", v)
	}
	if r := evalUptime(time.Hour, now, 30*24*time.Hour); r.status != statusPass {
		t.Errorf("got %v", r.status)
	}
}

func TestEvalInterfaces(t *testing.T) {
	pfx := netip.MustParsePrefix
	lo := iface{name: "lo", up: true, loopback: true, addrs: []netip.Prefix{pfx("127.0.0.1/8")}}
	tests := []struct {
		name string
		ifs  []iface
		want desksidev1.CheckStatus
	}{
		{"wired up", []iface{lo, {name: "eth0", up: true, addrs: []netip.Prefix{pfx("192.168.1.20/24")}}}, statusPass},
		{"ipv6 only", []iface{lo, {name: "eth0", up: true, addrs: []netip.Prefix{pfx("2001:db8::5/64")}}}, statusPass},
		{"dhcp failed", []iface{lo, {name: "wlan0", up: true, addrs: []netip.Prefix{pfx("169.254.7.1/16"), pfx("fe80::1/64")}}}, statusWarn},
		{"up without address", []iface{lo, {name: "eth0", up: true}}, statusWarn},
		{"all down", []iface{lo, {name: "eth0"}, {name: "wlan0"}}, statusFail},
		{"loopback only", []iface{lo}, statusFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := evalInterfaces(tt.ifs); r.status != tt.want {
				t.Errorf("got %s, want %v", describe(r.proto("network.interfaces", 0)), tt.want)
			}
		})
	}
}

func TestEvalDNSMixed(t *testing.T) {
	ok := dnsAnswer{server: "10.0.0.1:53", addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, queried: []string{"10.0.0.1:53"}, latency: time.Millisecond}
	slow := ok
	slow.latency = 1500 * time.Millisecond
	bad := dnsAnswer{server: "10.0.0.2:53", err: errors.New("i/o timeout"), latency: 3 * time.Second}
	tests := []struct {
		name string
		in   []dnsAnswer
		want desksidev1.CheckStatus
	}{
		{"all answer", []dnsAnswer{ok}, statusPass},
		{"slow", []dnsAnswer{slow}, statusWarn},
		{"one of two fails", []dnsAnswer{ok, bad}, statusWarn},
		{"all fail", []dnsAnswer{bad}, statusFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := evalDNS(new(result), "x.test", tt.in); r.status != tt.want {
				t.Errorf("got %s, want %v", describe(r.proto("network.dns", 0)), tt.want)
			}
		})
	}
}

func TestSMARTParsing(t *testing.T) {
	scan := "/dev/sda -d sat # /dev/sda [SAT], ATA device\n" +
		"/dev/nvme0 -d nvme # /dev/nvme0, NVMe device\n" +
		"# /dev/sdb -d usbjmicron # /dev/sdb [USB JMicron], open failed: Permission denied\n" +
		"-d evil\n" +
		"/dev/sdc -d $(reboot) # weird type dropped\n"
	got := parseSMARTScan([]byte(scan))
	want := []smartDevice{{"/dev/sda", "sat"}, {"/dev/nvme0", "nvme"}, {"/dev/sdc", ""}}
	if !slices.Equal(got, want) {
		t.Errorf("scan = %v, want %v", got, want)
	}

	tests := []struct {
		name   string
		json   string
		exit   int
		status string
	}{
		{"passed", `{"smartctl":{"exit_status":0},"model_name":"Samsung SSD","smart_status":{"passed":true}}`, 0, "passed"},
		{"failing", `{"smartctl":{"exit_status":24},"smart_status":{"passed":false}}`, 24, "FAILING"},
		{"prefail attributes", `{"smartctl":{"exit_status":16},"smart_status":{"passed":true}}`, 16, "warning"},
		{"cannot open", `{"smartctl":{"exit_status":2,"messages":[{"string":"Permission denied","severity":"error"}]}}`, 2, "unknown"},
		{"garbage", `not json`, 0, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v := parseSMARTHealth("/dev/sda", []byte(tt.json), tt.exit); v.status != tt.status {
				t.Errorf("status %q (%s), want %q", v.status, v.detail, tt.status)
			}
		})
	}

	r := evalSMART(new(result), []smartVerdict{{device: "/dev/sda", status: "passed"}, {device: "/dev/sdb", status: "FAILING"}})
	if r.status != statusFail || !strings.Contains(r.summary, "/dev/sdb") {
		t.Errorf("got %s", describe(r.proto("disk.smart", 0)))
	}
	if r := evalSMART(new(result), []smartVerdict{{device: "/dev/sda", status: "unknown"}}); r.status != statusUnavailable {
		t.Errorf("no verdict: got %v", r.status)
	}
}

func TestServicesAndJournal(t *testing.T) {
	units := parseFailedUnits([]byte("● cups.service    loaded failed failed CUPS Scheduler\nsnapd.socket loaded failed failed Socket\n\n"))
	if want := []string{"cups.service", "snapd.socket"}; !slices.Equal(units, want) {
		t.Errorf("units %v, want %v", units, want)
	}
	if r := evalServices(units); r.status != statusFail || !strings.Contains(r.summary, "2 services failed: cups.service, snapd.socket") {
		t.Errorf("got %s", describe(r.proto("services.failed", 0)))
	}
	if r := evalServices(nil); r.status != statusPass {
		t.Errorf("got %v", r.status)
	}

	j := parseJournal([]byte("-- Boot 1234 --\n2026-01-01T10:00:00+0000 host kernel: ata1: failed command\n2026-01-01T10:00:01+0000 host sshd[5]: error: x\n-- No entries --\n"))
	if len(j) != 2 {
		t.Fatalf("entries %q", j)
	}
	r := evalLogs(j, journalLines)
	if r.status != statusWarn || r.summary != "2 errors logged since boot" {
		t.Errorf("got %s", describe(r.proto("logs.errors", 0)))
	}
	many := make([]string, journalLines)
	for i := range many {
		many[i] = fmt.Sprintf("line %d", i)
	}
	p := evalLogs(many, journalLines).proto("logs.errors", 0)
	if v, _ := evidence(p, "errors this boot"); v != "50 or more" {
		t.Errorf("count %q", v)
	}
	if v, _ := evidence(p, "entry 50"); v != "line 49" {
		t.Errorf("last entry %q", v)
	}
	if r := evalLogs(nil, journalLines); r.status != statusPass {
		t.Errorf("no errors: %v", r.status)
	}
}

func TestUpdatesParsing(t *testing.T) {
	apt := "NOTE: This is only a simulation!\n" +
		"Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])\n" +
		"Inst libssl3 [3.0.1] (3.0.2 Debian-Security:12/oldstable-security [amd64])\n" +
		"Conf bash (5.2.15-2+b13 Debian:12.15/oldstable [amd64])\n"
	pkgs, sec := parseAptSimulation([]byte(apt))
	if !slices.Equal(pkgs, []string{"bash", "libssl3"}) || sec != 1 {
		t.Errorf("apt: %v %d", pkgs, sec)
	}
	dnf := "\nkernel.x86_64    6.8.1-1.fc40    updates\nvim-minimal.x86_64  2:9.1-1.fc40  updates\nObsoleting Packages\nfoo.noarch 1-1 updates\n"
	if got := parseDnfCheckUpdate([]byte(dnf)); !slices.Equal(got, []string{"kernel.x86_64", "vim-minimal.x86_64"}) {
		t.Errorf("dnf: %v", got)
	}
	tests := []struct {
		name string
		info updateInfo
		warn uint32
		want desksidev1.CheckStatus
	}{
		{"none", updateInfo{manager: "apt"}, 1, statusPass},
		{"one", updateInfo{manager: "apt", packages: []string{"bash"}}, 1, statusWarn},
		{"under a raised threshold", updateInfo{manager: "apt", packages: []string{"a", "b"}}, 5, statusPass},
		{"at a raised threshold", updateInfo{manager: "dnf", packages: []string{"a", "b", "c", "d", "e"}}, 5, statusWarn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := evalUpdates(tt.info, tt.warn); r.status != tt.want {
				t.Errorf("got %s, want %v", describe(r.proto("updates.pending", 0)), tt.want)
			}
		})
	}
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	r := evalReboot(rebootInfo{required: true, since: now.Add(-25 * time.Hour), packages: []string{"linux-image-6.1", "libc6"}}, now)
	if p := r.proto("updates.reboot", 0); r.status != statusWarn || !strings.Contains(fmt.Sprint(p.GetEvidence()), "linux-image-6.1, libc6") {
		t.Errorf("got %s", describe(p))
	}
}

func TestEvalTime(t *testing.T) {
	tests := []struct {
		name string
		st   clockState
		want desksidev1.CheckStatus
	}{
		{"synced", clockState{synced: true, offset: 2 * time.Millisecond}, statusPass},
		{"unsynced", clockState{state: "TIME_ERROR"}, statusWarn},
		{"offset at threshold", clockState{synced: true, offset: -time.Second}, statusWarn},
		{"ntp off", clockState{ntp: "no"}, statusWarn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := evalTime(tt.st, time.Second); r.status != tt.want {
				t.Errorf("got %s, want %v", describe(r.proto("time.sync", 0)), tt.want)
			}
		})
	}
}

func TestProxyRedaction(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://proxy:3128", "http://proxy:3128"},
		{"http://bob:s3cret@proxy:3128/", "http://bob:xxxxx@proxy:3128/"},
		{"bob:s3cret@proxy:3128", "bob:xxxxx@proxy:3128"},
		{"socks5://tok@proxy", "socks5://tok@proxy"},
	}
	for _, tt := range tests {
		if got := redactProxy(tt.in); got != tt.want {
			t.Errorf("redactProxy(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	r := evalProxy(map[string]string{"HTTPS_PROXY": "http://u:pw@p:8080"}, map[string]string{}, "/etc/environment", nil)
	p := r.proto("network.proxy", 0)
	if r.status != statusPass || strings.Contains(fmt.Sprint(p), "pw@") || !strings.Contains(r.summary, "http://u:xxxxx@p:8080") {
		t.Errorf("got %s", describe(p))
	}
	if v, ok := evidence(p, "note"); !ok || !strings.Contains(v, "differ") {
		t.Errorf("no note that the agent differs from the system: %s", describe(p))
	}
	same := evalProxy(map[string]string{"HTTPS_PROXY": "http://p:1"}, map[string]string{"https_proxy": "http://p:1"}, "/etc/environment", nil)
	if _, ok := evidence(same.proto("x", 0), "note"); ok {
		t.Error("same settings in both spellings reported as differing")
	}
	if r := evalProxy(nil, nil, "system", fmt.Errorf("x: %w", ErrNotSupported)); r.status != statusPass || r.summary != "no proxy configured" {
		t.Errorf("got %s", describe(r.proto("x", 0)))
	}
}

func TestFromError(t *testing.T) {
	r := new(result).fromError("could not", fmt.Errorf("services: %w", ErrNotSupported))
	if r.status != statusUnavailable || !strings.HasPrefix(r.summary, "not supported on ") || !strings.HasSuffix(r.summary, " yet") {
		t.Errorf("got %q", r.summary)
	}
	if r := new(result).fromError("could not", ErrNoSystemd); r.summary != ErrNoSystemd.Error() {
		t.Errorf("got %q", r.summary)
	}
	if r := new(result).fromError("could not read", errors.New("boom\nmore")); r.summary != "could not read: boom" {
		t.Errorf("got %q", r.summary)
	}
}
