package fleetsim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// A machine template: the hardware and operating system one simulated
// agent reports. The choices are weighted by how common they are in an
// office fleet; every value is picked deterministically from the seed and
// the agent's index, so a run can be repeated.
type hwModel struct {
	vendor, model, cpu, cpuVendor string
	cores, threads                uint32
	mhz                           float64
	ramGiB                        []uint64
	diskGiB                       []uint64
	diskModel                     string
	laptop                        bool
	gpu                           string
}

var models = []hwModel{
	{"Dell Inc.", "Latitude 5440", "13th Gen Intel(R) Core(TM) i5-1345U", "GenuineIntel", 10, 12, 1600, []uint64{8, 16, 32}, []uint64{256, 512}, "SAMSUNG MZVL2512HCJQ", true, "Intel Iris Xe Graphics"},
	{"Dell Inc.", "OptiPlex 7010", "13th Gen Intel(R) Core(TM) i7-13700", "GenuineIntel", 16, 24, 2100, []uint64{16, 32}, []uint64{512, 1024}, "KIOXIA KBG50ZNV512G", false, "Intel UHD Graphics 770"},
	{"LENOVO", "ThinkPad T14 Gen 4", "AMD Ryzen 7 PRO 7840U", "AuthenticAMD", 8, 16, 3300, []uint64{16, 32}, []uint64{512, 1024}, "SK hynix PC801", true, "AMD Radeon 780M"},
	{"LENOVO", "ThinkCentre M70q", "Intel(R) Core(TM) i5-12400T", "GenuineIntel", 6, 12, 1800, []uint64{8, 16}, []uint64{256, 512}, "WDC PC SN530", false, "Intel UHD Graphics 730"},
	{"HP", "EliteBook 840 G9", "12th Gen Intel(R) Core(TM) i7-1255U", "GenuineIntel", 10, 12, 1700, []uint64{16, 32}, []uint64{512}, "Samsung PM9A1", true, "Intel Iris Xe Graphics"},
	{"HP", "ProDesk 400 G7", "Intel(R) Core(TM) i3-10100", "GenuineIntel", 4, 8, 3600, []uint64{4, 8}, []uint64{256, 1000}, "ST1000DM010-2EP102", false, "Intel UHD Graphics 630"},
	{"Apple Inc.", "Mac14,2", "Apple M2", "Apple", 8, 8, 3490, []uint64{8, 16, 24}, []uint64{256, 512}, "APPLE SSD AP0512Z", true, "Apple M2"},
	{"QEMU", "Standard PC (Q35 + ICH9, 2009)", "Intel Xeon Processor (Icelake)", "GenuineIntel", 2, 4, 2600, []uint64{4, 8}, []uint64{64, 128}, "QEMU HARDDISK", false, ""},
}

type osRelease struct {
	name, family, kernel string
	versions             []string
	pkgSource            string
	weight               int
}

var osReleases = []osRelease{
	{"Microsoft Windows 11 Pro", "windows", "10.0.22631", []string{"23H2", "24H2"}, "msi", 40},
	{"Microsoft Windows 10 Pro", "windows", "10.0.19045", []string{"22H2"}, "msi", 20},
	{"Ubuntu", "linux", "6.8.0-48-generic", []string{"22.04.5", "24.04.1"}, "dpkg", 15},
	{"Debian GNU/Linux", "linux", "6.1.0-26-amd64", []string{"12.7", "12.8", "11.11"}, "dpkg", 10},
	{"Fedora Linux", "linux", "6.11.4-301.fc41.x86_64", []string{"40", "41"}, "rpm", 5},
	{"macOS", "darwin", "24.1.0", []string{"14.7", "15.1"}, "pkg", 10},
}

type pkg struct{ name, version string }

// Software common to every machine of a family, and optional software
// each machine has with some probability.
var (
	basePkgs = map[string][]pkg{
		"windows": {{"Microsoft Edge", "130.0.2849.68"}, {"Microsoft 365 Apps for enterprise", "16.0.18129.20116"}, {"Microsoft Teams", "24277.3502.3161.3007"}, {"Windows Defender", "4.18.24090.11"}},
		"linux":   {{"coreutils", "9.1-1"}, {"openssh-client", "1:9.2p1-2"}, {"systemd", "252.30-1"}, {"libc6", "2.36-9"}, {"bash", "5.2.15-2"}, {"network-manager", "1.42.4-1"}},
		"darwin":  {{"Safari", "18.1"}, {"Xcode Command Line Tools", "16.1"}, {"Microsoft Outlook", "16.90"}},
	}
	optionalPkgs = []pkg{
		{"Google Chrome", "131.0.6778.69"}, {"Mozilla Firefox", "132.0.2"}, {"Zoom", "6.2.10"}, {"Slack", "4.41.97"},
		{"7-Zip", "24.08"}, {"Visual Studio Code", "1.95.3"}, {"Adobe Acrobat Reader", "24.004.20220"}, {"VLC media player", "3.0.21"},
		{"LibreOffice", "24.8.3"}, {"Git", "2.47.0"}, {"Docker Desktop", "4.35.1"}, {"Python", "3.12.7"},
		{"Notepad++", "8.7.1"}, {"KeePassXC", "2.7.9"}, {"Thunderbird", "128.4.3"}, {"GIMP", "2.10.38"},
		{"OpenVPN Connect", "3.5.0"}, {"WireGuard", "0.5.3"}, {"Wireshark", "4.4.2"}, {"PuTTY", "0.81"},
	}
	processNames = []string{"chrome", "firefox", "Teams", "outlook", "code", "slack", "zoom", "explorer", "svchost", "gnome-shell", "Xorg", "java", "python3", "MsMpEng", "WindowServer"}
	users        = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter"}
)

// machine is one simulated device: its fixed hardware and software, and
// the slowly moving state its health samples come from.
type machine struct {
	index    int
	hostname string
	model    hwModel
	os       osRelease
	version  string
	ramBytes uint64
	disk     uint64
	serial   string
	mac      string
	user     string
	boot     time.Time

	mu       sync.Mutex
	rng      *rand.Rand // for health samples; guarded by mu
	software []pkg      // guarded by mu
	changes  int        // inventory changes applied; guarded by mu
	cpu      float64    // current load level (0–100); guarded by mu
	used     float64    // disk use fraction; guarded by mu

	// sampleJitter is the most a sample is delayed by (the real sampler
	// takes a moment; devices drift apart).
	sampleJitter time.Duration
	samples      *atomic.Uint64 // samples taken (fleet-wide counter)
}

// newMachine picks device index's template from seed.
func newMachine(seed uint64, index int, jitter time.Duration, samples *atomic.Uint64) *machine {
	r := rand.New(rand.NewPCG(seed, uint64(index)))
	m := &machine{index: index, sampleJitter: jitter, samples: samples}
	m.model = models[r.IntN(len(models))]
	total := 0
	for _, o := range osReleases {
		total += o.weight
	}
	pick := r.IntN(total)
	for _, o := range osReleases {
		if pick < o.weight {
			m.os = o
			break
		}
		pick -= o.weight
	}
	if m.model.vendor == "Apple Inc." {
		m.os = osReleases[len(osReleases)-1]
	} else if m.os.family == "darwin" {
		m.os = osReleases[0]
	}
	m.version = m.os.versions[r.IntN(len(m.os.versions))]
	m.ramBytes = m.model.ramGiB[r.IntN(len(m.model.ramGiB))] << 30
	m.disk = m.model.diskGiB[r.IntN(len(m.model.diskGiB))] * 1_000_000_000
	m.serial = fmt.Sprintf("SIM%07d%04X", index, r.Uint32()&0xffff)
	m.mac = fmt.Sprintf("02:5e:%02x:%02x:%02x:%02x", byte(index>>16), byte(index>>8), byte(index), byte(r.Uint32()))
	m.user = users[r.IntN(len(users))]
	prefix := "ws"
	if m.model.laptop {
		prefix = "nb"
	}
	m.hostname = fmt.Sprintf("sim-%s-%05d", prefix, index)
	m.boot = time.Now().Add(-time.Duration(r.IntN(14*24)) * time.Hour)
	m.software = append(m.software, basePkgs[m.os.family]...)
	for _, p := range optionalPkgs {
		if r.IntN(3) == 0 {
			m.software = append(m.software, p)
		}
	}
	m.cpu = 2 + r.Float64()*20
	m.used = 0.2 + r.Float64()*0.6
	m.rng = rand.New(rand.NewPCG(seed^0x5eed, uint64(index)))
	return m
}

// Change makes one inventory change as an office machine sees them: a
// package upgraded, installed or removed, or (rarely) memory replaced.
func (m *machine) Change() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changes++
	switch m.rng.IntN(4) {
	case 0:
		m.software = append(m.software, pkg{fmt.Sprintf("Line-of-business app %d", m.changes), fmt.Sprintf("1.%d.0", m.changes)})
	case 1:
		if len(m.software) > 1 {
			m.software = append(m.software[:0:0], m.software[:len(m.software)-1]...)
		} else {
			m.software = append(m.software, pkg{"Remote support client", "2.0"})
		}
	case 2:
		m.ramBytes *= 2
	default:
		sw := append([]pkg(nil), m.software...)
		i := m.rng.IntN(len(sw))
		sw[i].version += fmt.Sprintf(".%d", m.changes)
		m.software = sw
	}
}

// Read is the device's inventory (link.InventoryReader).
func (m *machine) Read(context.Context) (*desksidev1.Inventory, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inv := &desksidev1.Inventory{
		Hostname: m.hostname,
		Os: &desksidev1.OperatingSystem{Name: m.os.name, Version: m.version, Kernel: m.os.kernel, Arch: "x86_64", Family: m.os.family,
			Build: m.os.kernel},
		BootTime: timestamppb.New(m.boot),
		Cpu: &desksidev1.Cpu{Model: m.model.cpu, Vendor: m.model.cpuVendor, Cores: m.model.cores, Threads: m.model.threads,
			Mhz: m.model.mhz, Sockets: 1},
		Memory: &desksidev1.Memory{TotalBytes: m.ramBytes, SwapTotalBytes: 2 << 30},
		Partitions: []*desksidev1.Partition{{Device: "/dev/nvme0n1p2", Mountpoint: m.root(), Fstype: m.fstype(), TotalBytes: m.disk,
			UsedBytes: uint64(float64(m.disk) * m.used), FreeBytes: uint64(float64(m.disk) * (1 - m.used))}},
		Disks: []*desksidev1.Disk{{Name: "nvme0n1", Model: m.model.diskModel, Serial: m.serial + "D", SizeBytes: m.disk}},
		Nics: []*desksidev1.NetworkInterface{{Name: "eth0", Mac: m.mac, Addresses: []string{fmt.Sprintf("10.%d.%d.%d/16", 20+m.index>>16, byte(m.index>>8), byte(m.index))},
			SpeedMbps: 1000, Up: true, Mtu: 1500}},
		System:      &desksidev1.SystemInfo{Manufacturer: m.model.vendor, Model: m.model.model, Serial: m.serial, Uuid: fmt.Sprintf("5a1e0000-0000-4000-8000-%012x", m.index)},
		Bios:        &desksidev1.Bios{Vendor: m.model.vendor, Version: "1.18.0", Date: "2024-06-12"},
		Users:       []*desksidev1.LoggedInUser{{Name: m.user, Terminal: "console", Started: timestamppb.New(m.boot.Add(time.Minute))}},
		CollectedAt: timestamppb.Now(),
	}
	for _, p := range m.software {
		inv.Software = append(inv.Software, &desksidev1.Software{Name: p.name, Version: p.version, Source: m.os.pkgSource})
	}
	if m.model.gpu != "" {
		inv.Gpus = []*desksidev1.Gpu{{Vendor: m.model.cpuVendor, Model: m.model.gpu}}
	}
	if m.model.laptop {
		inv.Batteries = []*desksidev1.Battery{{Name: "BAT0", ChargePercent: 80, State: "discharging", FullWh: 48, DesignWh: 52}}
	}
	return inv, nil
}

func (m *machine) root() string {
	if m.os.family == "windows" {
		return `C:\`
	}
	return "/"
}

func (m *machine) fstype() string {
	switch m.os.family {
	case "windows":
		return "NTFS"
	case "darwin":
		return "apfs"
	}
	return "ext4"
}

// Sample is one health sample (link.Sampler): a random walk around the
// device's load, after a short random delay.
func (m *machine) Sample(ctx context.Context) (*desksidev1.HealthSample, error) {
	m.mu.Lock()
	delay := time.Duration(0)
	if m.sampleJitter > 0 {
		delay = time.Duration(m.rng.Int64N(int64(m.sampleJitter)))
	}
	m.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rng
	m.cpu = min(max(m.cpu+r.NormFloat64()*4, 0.5), 100)
	m.used = min(max(m.used+r.NormFloat64()*0.0005, 0.05), 0.99)
	memUsed := uint64(float64(m.ramBytes) * min(0.3+m.cpu/150+r.Float64()*0.05, 0.97))
	s := &desksidev1.HealthSample{
		Time:       timestamppb.Now(),
		CpuPercent: m.cpu, Load1: m.cpu / 100 * float64(m.model.threads), Load5: m.cpu / 110 * float64(m.model.threads), Load15: m.cpu / 120 * float64(m.model.threads),
		MemUsedBytes: memUsed, MemAvailableBytes: m.ramBytes - memUsed, MemTotalBytes: m.ramBytes,
		SwapUsedBytes: uint64(r.IntN(64)) << 20, SwapTotalBytes: 2 << 30,
		Mounts:           []*desksidev1.MountUsage{{Mountpoint: m.root(), UsedPercent: m.used * 100, FreeBytes: uint64(float64(m.disk) * (1 - m.used)), TotalBytes: m.disk}},
		NetRxBytesPerSec: r.ExpFloat64() * 40_000, NetTxBytesPerSec: r.ExpFloat64() * 8_000,
		Temperatures: []*desksidev1.Temperature{{Sensor: "Package id 0", Celsius: 38 + m.cpu/4 + r.Float64()*3}},
	}
	for i := range 5 {
		s.TopCpu = append(s.TopCpu, &desksidev1.ProcessUsage{Pid: int32(1000 + i*37 + m.index%97), Name: processNames[(m.index+i)%len(processNames)],
			User: m.user, CpuPercent: m.cpu / float64(i+2), RssBytes: uint64(200+r.IntN(800)) << 20})
		s.TopMemory = append(s.TopMemory, &desksidev1.ProcessUsage{Pid: int32(2000 + i*41 + m.index%89), Name: processNames[(m.index+i+3)%len(processNames)],
			User: m.user, CpuPercent: r.Float64() * 5, RssBytes: uint64(900-i*150+r.IntN(100)) << 20})
	}
	m.samples.Add(1)
	return s, nil
}
