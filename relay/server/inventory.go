package server

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/store"
)

// FormatBytes renders a byte count the way technicians read it.
var FormatBytes = wire.FormatBytes

// flattenInventory maps an inventory to "path" → human value for the
// fields whose changes matter to IT. Values that move by themselves
// (used space, clock speed, logged-in users, battery charge, boot time)
// are left out so the history records changes, not noise.
func flattenInventory(inv *desksidev1.Inventory) map[string]string {
	m := map[string]string{}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	num := func(k string, v uint64) {
		if v != 0 {
			m[k] = strconv.FormatUint(v, 10)
		}
	}
	size := func(k string, v uint64) {
		if v != 0 {
			m[k] = FormatBytes(v)
		}
	}
	put("hostname", inv.GetHostname())
	os := inv.GetOs()
	put("os.name", os.GetName())
	put("os.version", os.GetVersion())
	put("os.build", os.GetBuild())
	put("os.kernel", os.GetKernel())
	put("os.arch", os.GetArch())
	cpu := inv.GetCpu()
	put("cpu.model", cpu.GetModel())
	num("cpu.cores", uint64(cpu.GetCores()))
	num("cpu.threads", uint64(cpu.GetThreads()))
	size("memory.total", inv.GetMemory().GetTotalBytes())
	size("memory.swap", inv.GetMemory().GetSwapTotalBytes())
	sys := inv.GetSystem()
	put("system.manufacturer", sys.GetManufacturer())
	put("system.model", sys.GetModel())
	put("system.serial", sys.GetSerial())
	put("bios.vendor", inv.GetBios().GetVendor())
	put("bios.version", inv.GetBios().GetVersion())
	put("bios.date", inv.GetBios().GetDate())
	for _, p := range inv.GetPartitions() {
		k := "partition[" + p.GetMountpoint() + "]"
		put(k+".device", p.GetDevice())
		put(k+".fstype", p.GetFstype())
		size(k+".size", p.GetTotalBytes())
	}
	for _, d := range inv.GetDisks() {
		k := "disk[" + d.GetName() + "]"
		put(k+".model", d.GetModel())
		put(k+".serial", d.GetSerial())
		size(k+".size", d.GetSizeBytes())
	}
	for _, n := range inv.GetNics() {
		k := "nic[" + n.GetName() + "]"
		put(k+".mac", n.GetMac())
		addrs := slices.Clone(n.GetAddresses())
		slices.Sort(addrs)
		put(k+".addresses", strings.Join(addrs, ", "))
		if s := n.GetSpeedMbps(); s != 0 {
			m[k+".speed"] = strconv.FormatUint(s, 10) + " Mbit/s"
		}
	}
	for i, g := range inv.GetGpus() {
		put("gpu["+strconv.Itoa(i)+"]", strings.TrimSpace(g.GetVendor()+" "+g.GetModel()))
	}
	for _, b := range inv.GetBatteries() {
		if b.GetDesignWh() > 0 {
			m["battery["+b.GetName()+"].design"] = fmt.Sprintf("%.1f Wh", b.GetDesignWh())
		}
	}
	for _, sw := range inv.GetSoftware() {
		k := "software[" + sw.GetName() + "]"
		if v := sw.GetVersion(); v != "" {
			m[k] = v
		} else {
			m[k] = "installed"
		}
	}
	return m
}

// DiffInventory lists what changed from old to new, sorted by field. A nil
// old inventory (first report) yields no changes.
func DiffInventory(old, new *desksidev1.Inventory) []store.InventoryChange {
	if old == nil {
		return nil
	}
	a, b := flattenInventory(old), flattenInventory(new)
	var out []store.InventoryChange
	for k, v := range b {
		if a[k] != v {
			out = append(out, store.InventoryChange{Field: k, From: a[k], To: v})
		}
	}
	for k, v := range a {
		if _, ok := b[k]; !ok {
			out = append(out, store.InventoryChange{Field: k, From: v})
		}
	}
	slices.SortFunc(out, func(x, y store.InventoryChange) int { return cmp.Compare(x.Field, y.Field) })
	return out
}

// Summarize extracts the fleet-view columns from an inventory.
func Summarize(inv *desksidev1.Inventory) store.DeviceSummary {
	s := store.DeviceSummary{
		Model:       strings.TrimSpace(inv.GetSystem().GetManufacturer() + " " + inv.GetSystem().GetModel()),
		CPUModel:    inv.GetCpu().GetModel(),
		MemoryBytes: inv.GetMemory().GetTotalBytes(),
		OSName:      inv.GetOs().GetName(),
		OSVersion:   inv.GetOs().GetVersion(),
		OSFamily:    inv.GetOs().GetFamily(),
		OSDisplay:   OSDisplayName(inv.GetOs().GetName(), inv.GetOs().GetVersion()),
	}
	// The system volume: "/" on Unix, the first drive letter otherwise.
	var sys *desksidev1.Partition
	for _, p := range inv.GetPartitions() {
		if p.GetMountpoint() == "/" || strings.EqualFold(p.GetMountpoint(), `C:\`) || strings.EqualFold(p.GetMountpoint(), "C:") {
			sys = p
			break
		}
	}
	if sys == nil && len(inv.GetPartitions()) > 0 {
		sys = inv.GetPartitions()[0]
	}
	if sys != nil {
		s.DiskTotalBytes = sys.GetTotalBytes()
		s.DiskUsedBytes = min(sys.GetUsedBytes(), sys.GetTotalBytes())
		// What users can actually write, as df shows it: a full volume
		// says 0 even when root's reserved blocks remain. Every agent
		// sends free_bytes (it came with protocol version 1), so total
		// minus used, which counts the reserved blocks as free, is never
		// a stand-in.
		s.DiskFreeBytes = min(sys.GetFreeBytes(), sys.GetTotalBytes())
	}
	if u := inv.GetUsers(); len(u) > 0 {
		s.User = u[0].GetName()
	}
	return s
}

// OSDisplayName is the short name of an operating system that the fleet
// view shows: the inventory's name without a leading "Microsoft ", then
// its version unless the name already has it or is Windows (whose name
// carries the release and whose version is a build number); with a
// version, a trailing " GNU/Linux" or " Linux" goes. "Debian GNU/Linux"
// 12.11 is "Debian 12.11", "Fedora Linux" 40 "Fedora 40", "macOS" 15.1
// "macOS 15.1", "Microsoft Windows 11 Pro" "Windows 11 Pro".
func OSDisplayName(name, version string) string {
	name = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), "Microsoft "))
	version = strings.TrimSpace(version)
	if name == "" || version == "" || strings.Contains(name, version) || strings.HasPrefix(name, "Windows") {
		return name
	}
	for _, suffix := range []string{" GNU/Linux", " Linux"} {
		if short, ok := strings.CutSuffix(name, suffix); ok && short != "" {
			name = short
			break
		}
	}
	return name + " " + version
}

func validateInventory(inv *desksidev1.Inventory) error {
	if inv.GetHostname() == "" {
		return fmt.Errorf("%w: inventory.hostname is empty", wire.ErrInvalid)
	}
	for i, p := range inv.GetPartitions() {
		if p.GetUsedBytes() > p.GetTotalBytes() {
			return fmt.Errorf("%w: inventory.partitions[%d] uses more than its size", wire.ErrInvalid, i)
		}
	}
	return nil
}

// maxClockSkew bounds how far in the future a sample's time may be.
const maxClockSkew = 24 * time.Hour

func healthRow(hs *desksidev1.HealthSample, now time.Time) (store.HealthSample, error) {
	if hs.GetId() == 0 {
		return store.HealthSample{}, fmt.Errorf("%w: id is zero", wire.ErrInvalid)
	}
	if hs.GetTime() == nil || !hs.GetTime().IsValid() {
		return store.HealthSample{}, fmt.Errorf("%w: time is missing or invalid", wire.ErrInvalid)
	}
	t := hs.GetTime().AsTime()
	if t.After(now.Add(maxClockSkew)) || t.Before(now.AddDate(-1, 0, 0)) {
		return store.HealthSample{}, fmt.Errorf("%w: time %s is too far from the relay's clock %s", wire.ErrInvalid, t.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	for _, f := range [...]struct {
		name string
		v    float64
	}{
		{"cpu_percent", hs.GetCpuPercent()}, {"load1", hs.GetLoad1()},
		{"net_rx_bytes_per_sec", hs.GetNetRxBytesPerSec()}, {"net_tx_bytes_per_sec", hs.GetNetTxBytesPerSec()},
	} {
		if f.v < 0 {
			return store.HealthSample{}, fmt.Errorf("%w: %s is negative", wire.ErrInvalid, f.name)
		}
	}
	if hs.GetCpuPercent() > 100 {
		return store.HealthSample{}, fmt.Errorf("%w: cpu_percent %.1f is over 100", wire.ErrInvalid, hs.GetCpuPercent())
	}
	var disk float64
	for i, m := range hs.GetMounts() {
		if m.GetUsedPercent() < 0 || m.GetUsedPercent() > 100 {
			return store.HealthSample{}, fmt.Errorf("%w: mounts[%d].used_percent %.1f is outside 0–100", wire.ErrInvalid, i, m.GetUsedPercent())
		}
		disk = max(disk, m.GetUsedPercent())
	}
	detail, err := proto.MarshalOptions{Deterministic: true}.Marshal(hs)
	if err != nil {
		return store.HealthSample{}, fmt.Errorf("%w: %v", wire.ErrInvalid, err)
	}
	return store.HealthSample{
		ID: hs.GetId(), Time: t, CPUPercent: hs.GetCpuPercent(), Load1: hs.GetLoad1(),
		MemUsedBytes: hs.GetMemUsedBytes(), MemAvailBytes: hs.GetMemAvailableBytes(), SwapUsedBytes: hs.GetSwapUsedBytes(),
		DiskUsedPercent: disk, NetRxBps: hs.GetNetRxBytesPerSec(), NetTxBps: hs.GetNetTxBytesPerSec(), Detail: detail,
	}, nil
}
