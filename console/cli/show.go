package cli

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// softwareShown is how many software entries `devices show` lists without
// --software.
const softwareShown = 10

// writeDevice renders a GetDevice response for a terminal. Every
// agent-reported string goes through clean (via kv, table or directly).
func writeDevice(w io.Writer, r *desksidev1.GetDeviceResponse, now time.Time, allSoftware bool) {
	d := r.GetDevice()
	state := "offline"
	switch {
	case d.GetRevoked():
		state = "revoked"
	case d.GetOnline():
		state = "online"
	}
	fmt.Fprintf(w, "Device %s\n", clean(d.GetId()))
	kv(w, append([][2]string{
		{"Hostname", d.GetHostname()},
		{"State", state},
		{"Last seen", when(now, d.GetLastSeen())},
		{"First seen", when(now, d.GetFirstSeen())},
		{"Agent", d.GetAgentVersion()},
		{"OS", osLine(d)},
		{"User", d.GetUser()},
		{"Group", d.GetGroup()},
	}, policyRows(d)...))
	writeEndpoint(w, d.GetEndpointTrust())

	inv := r.GetInventory()
	if inv == nil {
		fmt.Fprintf(w, "\nNo inventory received yet: the agent sends one after it connects (or run `deskside devices refresh %s`).\n", clean(d.GetId()))
	} else {
		writeInventory(w, inv, now, allSoftware)
	}

	if h := r.GetLatestHealth(); h != nil {
		writeHealth(w, h, now)
	} else {
		fmt.Fprint(w, "\nHealth\n  No health samples yet.\n")
	}
}

// when renders a timestamp as "3m ago (2026-11-23 10:04:05)".
func when(now time.Time, ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "never"
	}
	t := ts.AsTime()
	return ago(now, t) + " (" + fmtTime(t) + ")"
}

func section(w io.Writer, title string) { fmt.Fprintf(w, "\n%s\n", title) }

func writeInventory(w io.Writer, inv *desksidev1.Inventory, now time.Time, allSoftware bool) {
	section(w, "Inventory")
	collected := ""
	if inv.GetCollectedAt() != nil {
		collected = when(now, inv.GetCollectedAt())
	}
	kv(w, [][2]string{{"Collected", collected}, {"Reported hostname", inv.GetHostname()}})

	sys, bios := inv.GetSystem(), inv.GetBios()
	section(w, "System")
	biosLine := strings.TrimSpace(bios.GetVendor() + " " + bios.GetVersion())
	if bios.GetDate() != "" {
		biosLine += " (" + bios.GetDate() + ")"
	}
	kv(w, [][2]string{
		{"Manufacturer", sys.GetManufacturer()}, {"Model", sys.GetModel()}, {"Serial", sys.GetSerial()},
		{"UUID", sys.GetUuid()}, {"BIOS", biosLine},
	})

	os := inv.GetOs()
	section(w, "Operating system")
	boot := ""
	if bt := inv.GetBootTime(); bt != nil {
		boot = fmtTime(bt.AsTime()) + " (up " + roughDuration(now.Sub(bt.AsTime())) + ")"
	}
	kv(w, [][2]string{
		{"Name", strings.TrimSpace(os.GetName() + " " + os.GetVersion())}, {"Build", os.GetBuild()},
		{"Kernel", os.GetKernel()}, {"Architecture", os.GetArch()}, {"Family", os.GetFamily()}, {"Booted", boot},
	})

	cpu := inv.GetCpu()
	section(w, "CPU")
	cores := ""
	if cpu.GetCores() != 0 || cpu.GetThreads() != 0 {
		cores = fmt.Sprintf("%d cores, %d threads", cpu.GetCores(), cpu.GetThreads())
	}
	var mhz, sockets string
	if cpu.GetMhz() > 0 {
		mhz = fmt.Sprintf("%.0f MHz", cpu.GetMhz())
	}
	if cpu.GetSockets() > 0 {
		sockets = strconv.FormatUint(uint64(cpu.GetSockets()), 10)
	}
	kv(w, [][2]string{{"Model", cpu.GetModel()}, {"Vendor", cpu.GetVendor()}, {"Cores", cores}, {"Speed", mhz}, {"Sockets", sockets}})

	section(w, "Memory")
	kv(w, [][2]string{{"Total", sizeOrDash(inv.GetMemory().GetTotalBytes())}, {"Swap", sizeOrDash(inv.GetMemory().GetSwapTotalBytes())}})

	if disks := inv.GetDisks(); len(disks) > 0 {
		section(w, "Disks")
		rows := make([][]string, 0, len(disks))
		for _, d := range disks {
			kind := "SSD"
			if d.GetRotational() {
				kind = "HDD"
			}
			if d.GetRemovable() {
				kind += ", removable"
			}
			rows = append(rows, []string{d.GetName(), d.GetModel(), d.GetSerial(), sizeOrDash(d.GetSizeBytes()), kind})
		}
		table(w, "  ", []string{"NAME", "MODEL", "SERIAL", "SIZE", "TYPE"}, rows)
	}
	if parts := inv.GetPartitions(); len(parts) > 0 {
		section(w, "Partitions")
		rows := make([][]string, 0, len(parts))
		for _, p := range parts {
			// As df: FREE is what users can write (statfs f_bavail), USE% is
			// used / (used + free), so blocks reserved for root count in neither.
			rows = append(rows, []string{p.GetMountpoint(), p.GetDevice(), p.GetFstype(),
				sizeOrDash(p.GetTotalBytes()), formatBytes(p.GetUsedBytes()), formatBytes(p.GetFreeBytes()), dfPercent(p.GetUsedBytes(), p.GetFreeBytes())})
		}
		table(w, "  ", []string{"MOUNT", "DEVICE", "FS", "SIZE", "USED", "FREE", "USE%"}, rows)
	}
	if nics := inv.GetNics(); len(nics) > 0 {
		section(w, "Network")
		rows := make([][]string, 0, len(nics))
		for _, n := range nics {
			state := "down"
			if n.GetUp() {
				state = "up"
			}
			speed := "-"
			if n.GetSpeedMbps() > 0 {
				speed = strconv.FormatUint(n.GetSpeedMbps(), 10) + " Mbit/s"
			}
			mtu := "-"
			if n.GetMtu() > 0 {
				mtu = strconv.FormatUint(uint64(n.GetMtu()), 10)
			}
			rows = append(rows, []string{n.GetName(), n.GetMac(), strings.Join(n.GetAddresses(), " "), state, speed, mtu})
		}
		table(w, "  ", []string{"NAME", "MAC", "ADDRESSES", "STATE", "SPEED", "MTU"}, rows)
	}
	if users := inv.GetUsers(); len(users) > 0 {
		section(w, "Users")
		rows := make([][]string, 0, len(users))
		for _, u := range users {
			since := "-"
			if u.GetStarted() != nil {
				since = fmtTime(u.GetStarted().AsTime())
			}
			rows = append(rows, []string{u.GetName(), u.GetTerminal(), u.GetHost(), since})
		}
		table(w, "  ", []string{"NAME", "TERMINAL", "FROM", "SINCE"}, rows)
	}

	sw := slices.Clone(inv.GetSoftware())
	section(w, fmt.Sprintf("Software (%d packages)", len(sw)))
	if len(sw) > 0 {
		slices.SortFunc(sw, func(a, b *desksidev1.Software) int {
			return cmp.Or(cmp.Compare(strings.ToLower(a.GetName()), strings.ToLower(b.GetName())), cmp.Compare(a.GetVersion(), b.GetVersion()))
		})
		shown := sw
		if !allSoftware && len(sw) > softwareShown {
			shown = sw[:softwareShown]
		}
		rows := make([][]string, 0, len(shown))
		for _, s := range shown {
			rows = append(rows, []string{s.GetName(), s.GetVersion(), s.GetSource()})
		}
		table(w, "  ", []string{"NAME", "VERSION", "SOURCE"}, rows)
		if len(shown) < len(sw) {
			fmt.Fprintf(w, "  … and %d more: pass --software to list them all.\n", len(sw)-len(shown))
		}
	}

	if gpus := inv.GetGpus(); len(gpus) > 0 {
		section(w, "GPUs")
		rows := make([][]string, 0, len(gpus))
		for _, g := range gpus {
			rows = append(rows, []string{g.GetVendor(), g.GetModel(), g.GetDriver()})
		}
		table(w, "  ", []string{"VENDOR", "MODEL", "DRIVER"}, rows)
	}
	if bats := inv.GetBatteries(); len(bats) > 0 {
		section(w, "Batteries")
		rows := make([][]string, 0, len(bats))
		for _, b := range bats {
			health := "-"
			if b.GetDesignWh() > 0 {
				health = fmt.Sprintf("%.0f%% (%.1f of %.1f Wh)", b.GetFullWh()*100/b.GetDesignWh(), b.GetFullWh(), b.GetDesignWh())
			}
			rows = append(rows, []string{b.GetName(), fmt.Sprintf("%.0f%%", b.GetChargePercent()), b.GetState(), health})
		}
		table(w, "  ", []string{"NAME", "CHARGE", "STATE", "HEALTH"}, rows)
	}
	if errs := inv.GetErrors(); len(errs) > 0 {
		section(w, "Not collected")
		rows := make([][]string, 0, len(errs))
		for _, e := range errs {
			rows = append(rows, []string{e.GetSection(), e.GetMessage()})
		}
		table(w, "  ", []string{"SECTION", "REASON"}, rows)
	}
}

func writeHealth(w io.Writer, h *desksidev1.HealthSample, now time.Time) {
	section(w, "Health, sampled "+when(now, h.GetTime()))
	mem := ""
	if total := h.GetMemTotalBytes(); total > 0 {
		mem = fmt.Sprintf("%s used of %s (%s), %s available", formatBytes(h.GetMemUsedBytes()), formatBytes(total),
			percent(h.GetMemUsedBytes(), total), formatBytes(h.GetMemAvailableBytes()))
	} else if h.GetMemUsedBytes() > 0 {
		mem = formatBytes(h.GetMemUsedBytes()) + " used"
	}
	swap := ""
	if total := h.GetSwapTotalBytes(); total > 0 {
		swap = fmt.Sprintf("%s used of %s (%s)", formatBytes(h.GetSwapUsedBytes()), formatBytes(total), percent(h.GetSwapUsedBytes(), total))
	}
	kv(w, [][2]string{
		{"CPU", fmt.Sprintf("%.1f%% of all cores", h.GetCpuPercent())},
		{"Load", fmt.Sprintf("%.2f %.2f %.2f", h.GetLoad1(), h.GetLoad5(), h.GetLoad15())},
		{"Memory", mem},
		{"Swap", swap},
		{"Network", fmt.Sprintf("receive %s, send %s", formatRate(h.GetNetRxBytesPerSec()), formatRate(h.GetNetTxBytesPerSec()))},
	})
	if mounts := h.GetMounts(); len(mounts) > 0 {
		fmt.Fprintln(w, "  Mounts:")
		rows := make([][]string, 0, len(mounts))
		for _, m := range mounts {
			rows = append(rows, []string{m.GetMountpoint(), ceilPercent(m.GetUsedPercent()), formatBytes(m.GetFreeBytes()), sizeOrDash(m.GetTotalBytes())})
		}
		table(w, "    ", []string{"MOUNT", "USE%", "FREE", "SIZE"}, rows)
	}
	procs := func(title string, ps []*desksidev1.ProcessUsage) {
		if len(ps) == 0 {
			return
		}
		fmt.Fprintf(w, "  %s:\n", title)
		rows := make([][]string, 0, len(ps))
		for _, p := range ps {
			rows = append(rows, []string{strconv.Itoa(int(p.GetPid())), p.GetName(), p.GetUser(), fmt.Sprintf("%.1f%%", p.GetCpuPercent()), formatBytes(p.GetRssBytes())})
		}
		// Per-process CPU is on top's scale: one busy core is 100%.
		table(w, "    ", []string{"PID", "NAME", "USER", "CPU (1 core = 100%)", "MEMORY"}, rows)
	}
	procs("Top processes by CPU", h.GetTopCpu())
	procs("Top processes by memory", h.GetTopMemory())
	if temps := h.GetTemperatures(); len(temps) > 0 {
		fmt.Fprintln(w, "  Temperatures:")
		rows := make([][]string, 0, len(temps))
		for _, t := range temps {
			rows = append(rows, []string{t.GetSensor(), fmt.Sprintf("%.0f °C", t.GetCelsius())})
		}
		table(w, "    ", nil, rows)
	}
}
