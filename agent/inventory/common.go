package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/disk"
	"github.com/shirou/gopsutil/v3/host"
	"github.com/shirou/gopsutil/v3/mem"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// The sections in this file are portable: gopsutil and the standard
// library implement them on every platform the agent ships for.

func readHostname(_ context.Context, inv *desksidev1.Inventory) error {
	h, err := os.Hostname()
	if err != nil {
		return err
	}
	inv.Hostname = clean(h)
	return nil
}

func readOS(ctx context.Context, inv *desksidev1.Inventory) error {
	o := &desksidev1.OperatingSystem{}
	var errs []error
	platform, family, version, err := host.PlatformInformationWithContext(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	o.Name, o.Family, o.Version = clean(platform), clean(family), clean(version)
	if k, err := host.KernelVersionWithContext(ctx); err == nil {
		o.Kernel = clean(k)
	} else {
		errs = append(errs, err)
	}
	if a, err := host.KernelArch(); err == nil {
		o.Arch = clean(a)
	} else {
		errs = append(errs, err)
	}
	refineOS(ctx, o)
	inv.Os = o
	if o.Name == "" && o.Kernel == "" {
		return errors.Join(errs...)
	}
	return nil
}

func readBootTime(ctx context.Context, inv *desksidev1.Inventory) error {
	bt, err := host.BootTimeWithContext(ctx)
	if err != nil {
		return err
	}
	if bt == 0 || bt > math.MaxInt64 {
		return fmt.Errorf("implausible boot time %d", bt)
	}
	inv.BootTime = timestamppb.New(time.Unix(stableBootTime(int64(bt)), 0))
	return nil
}

// bootTime is the boot time last reported, in Unix seconds.
var bootTime atomic.Int64

// stableBootTime keeps the boot time reported before unless bt moved by
// more than a minute. The kernel derives it from the clock minus the
// uptime, so it wobbles by a second as the clock is slewed; reporting each
// wobble would record a boot_time "change" in the inventory history.
func stableBootTime(bt int64) int64 {
	for {
		old := bootTime.Load()
		if old != 0 && bt-old <= 60 && old-bt <= 60 {
			return old
		}
		if bootTime.CompareAndSwap(old, bt) {
			return bt
		}
	}
}

func readCPU(ctx context.Context, inv *desksidev1.Inventory) error {
	c := &desksidev1.Cpu{}
	var errs []error
	infos, err := cpu.InfoWithContext(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	if len(infos) > 0 {
		c.Model = clean(infos[0].ModelName)
		c.Vendor = clean(infos[0].VendorID)
		if mhz := infos[0].Mhz; mhz > 0 && !math.IsInf(mhz, 0) {
			c.Mhz = math.Round(mhz)
		}
		c.Sockets = cpuSockets(ctx, infos)
	}
	if n, err := cpu.CountsWithContext(ctx, false); err == nil && n > 0 {
		c.Cores = uint32(n)
	} else if err != nil {
		errs = append(errs, fmt.Errorf("physical cores: %w", err))
	}
	if n, err := cpu.CountsWithContext(ctx, true); err == nil && n > 0 {
		c.Threads = uint32(n)
	} else if err != nil {
		errs = append(errs, fmt.Errorf("logical cores: %w", err))
	}
	inv.Cpu = c
	if c.Threads == 0 && c.Model == "" {
		errs = append(errs, errors.New("no processor information"))
		return errors.Join(errs...)
	}
	return nil
}

func readMemory(ctx context.Context, inv *desksidev1.Inventory) error {
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return err
	}
	inv.Memory = &desksidev1.Memory{TotalBytes: vm.Total}
	sw, err := mem.SwapMemoryWithContext(ctx)
	if err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	inv.Memory.SwapTotalBytes = sw.Total
	return nil
}

// readPartitions lists mounted, real file systems with their size. A mount
// whose size cannot be read (permissions, absent media) is still listed,
// with zero sizes.
func readPartitions(ctx context.Context, inv *desksidev1.Inventory) error {
	parts, err := disk.PartitionsWithContext(ctx, true)
	if err != nil && len(parts) == 0 {
		return err
	}
	// Later mounts hide earlier ones on the same mountpoint.
	byMount := make(map[string]*desksidev1.Partition, len(parts))
	for _, p := range parts {
		if !keepMount(p.Mountpoint, p.Fstype) {
			continue
		}
		mp := clean(p.Mountpoint)
		if mp == "" {
			continue
		}
		part := &desksidev1.Partition{Device: clean(p.Device), Mountpoint: mp, Fstype: clean(p.Fstype)}
		if u, err := disk.UsageWithContext(ctx, p.Mountpoint); err == nil {
			part.TotalBytes, part.UsedBytes, part.FreeBytes = u.Total, u.Used, min(u.Free, u.Total)
		}
		byMount[mp] = part
	}
	out := make([]*desksidev1.Partition, 0, len(byMount))
	for _, p := range byMount {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *desksidev1.Partition) int { return cmp.Compare(a.Mountpoint, b.Mountpoint) })
	inv.Partitions = out
	return nil
}

// readNICs lists non-loopback interfaces with their addresses (CIDR
// notation, sorted).
func readNICs(_ context.Context, inv *desksidev1.Inventory) error {
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	out := make([]*desksidev1.NetworkInterface, 0, len(ifs))
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		n := &desksidev1.NetworkInterface{
			Name: clean(ifc.Name),
			Mac:  clean(ifc.HardwareAddr.String()),
			Up:   ifc.Flags&net.FlagUp != 0 && ifc.Flags&net.FlagRunning != 0,
		}
		if ifc.MTU > 0 && int64(ifc.MTU) <= math.MaxUint32 {
			n.Mtu = uint32(ifc.MTU)
		}
		if addrs, err := ifc.Addrs(); err == nil {
			for _, a := range addrs {
				if s := clean(a.String()); s != "" {
					n.Addresses = append(n.Addresses, s)
				}
			}
			slices.Sort(n.Addresses)
			n.Addresses = slices.Compact(n.Addresses)
		}
		if s, err := nicSpeedMbps(ifc.Name); err == nil {
			n.SpeedMbps = s
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *desksidev1.NetworkInterface) int { return cmp.Compare(a.Name, b.Name) })
	inv.Nics = out
	return nil
}
