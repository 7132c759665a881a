package diag

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/shirou/gopsutil/v3/disk"

	"github.com/deskside/deskside/agent/inventory"
	"github.com/deskside/deskside/proto/wire"
)

// mountUsage is the fill level of one file system.
type mountUsage struct {
	mountpoint, fstype, device string
	total, used, free          uint64 // bytes; free is what users may still write
	inodesTotal, inodesUsed    uint64
	err                        error // statfs failed
}

// spacePercent is used / (used + free), as df computes it: the blocks
// reserved for root do not count as free.
func (m mountUsage) spacePercent() float64 { return percent(m.used, m.used+m.free) }

func (m mountUsage) inodePercent() float64 { return percent(m.inodesUsed, m.inodesTotal) }

// skipFS are file systems that are full by nature (optical media).
var skipFS = map[string]bool{"iso9660": true, "udf": true, "cdfs": true}

// mountUsages lists the file systems the disk checks look at: "/", every
// mount that is not a pseudo file system (inventory.IsPseudoFS), not
// read-only and not optical media, and the extra mountpoints asked for.
// Bind mounts and over-mounts are reduced to one entry per device (the
// shortest mountpoint).
func mountUsages(ctx context.Context, extra []string) ([]mountUsage, error) {
	parts, err := disk.PartitionsWithContext(ctx, true)
	if err != nil && len(parts) == 0 {
		return nil, fmt.Errorf("mounts: %w", err)
	}
	extraSet := map[string]bool{}
	for _, m := range extra {
		extraSet[filepath.Clean(m)] = true
	}
	byMount := map[string]disk.PartitionStat{}
	for _, p := range parts {
		byMount[p.Mountpoint] = p // the last mount on a mountpoint is the visible one
	}
	var chosen []disk.PartitionStat
	byDevice := map[string]int{}
	for _, p := range byMount {
		if !extraSet[p.Mountpoint] && p.Mountpoint != "/" {
			if inventory.IsPseudoFS(p.Fstype) || skipFS[strings.ToLower(p.Fstype)] || slices.Contains(p.Opts, "ro") {
				continue
			}
			if strings.HasPrefix(p.Device, "/dev/") {
				if i, seen := byDevice[p.Device]; seen {
					if len(p.Mountpoint) < len(chosen[i].Mountpoint) {
						chosen[i] = p
					}
					continue
				}
				byDevice[p.Device] = len(chosen)
			}
		}
		chosen = append(chosen, p)
	}
	for m := range extraSet { // asked for but not a mountpoint: its file system
		if _, ok := byMount[m]; !ok {
			chosen = append(chosen, disk.PartitionStat{Mountpoint: m})
		}
	}
	out := make([]mountUsage, 0, len(chosen))
	for _, p := range chosen {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		m := mountUsage{mountpoint: p.Mountpoint, fstype: p.Fstype, device: p.Device}
		u, err := disk.UsageWithContext(ctx, p.Mountpoint)
		if err != nil {
			m.err = err
		} else {
			m.total, m.used, m.free = u.Total, u.Used, u.Free
			m.inodesTotal, m.inodesUsed = u.InodesTotal, u.InodesUsed
			if m.fstype == "" {
				m.fstype = u.Fstype
			}
		}
		out = append(out, m)
	}
	return out, nil
}

func checkDiskSpace(ctx context.Context, e *checkEnv) *result {
	ms, err := mountUsages(ctx, e.opts.ExtraMounts)
	if err != nil {
		return new(result).fromError("could not list file systems", err)
	}
	return evalSpace(ms, e.cfg.diskWarn, e.cfg.diskFail)
}

func checkDiskInodes(ctx context.Context, e *checkEnv) *result {
	ms, err := mountUsages(ctx, e.opts.ExtraMounts)
	if err != nil {
		return new(result).fromError("could not list file systems", err)
	}
	return evalInodes(ms, e.cfg.inodeWarn, e.cfg.inodeFail)
}

// evalSpace decides disk.space: the fullest mount against the thresholds.
func evalSpace(ms []mountUsage, warn, fail float64) *result {
	return evalFill(ms, warn, fail, fillKind{
		what: "space",
		pct:  mountUsage.spacePercent,
		has:  func(m mountUsage) bool { return m.used+m.free > 0 },
		detail: func(m mountUsage) string {
			return fmt.Sprintf("%s used (%s of %s, %s free), %s on %s", fmtPct(m.spacePercent()),
				wire.FormatBytes(m.used), wire.FormatBytes(m.used+m.free), wire.FormatBytes(m.free), m.fstype, m.device)
		},
		hint: "Free space: empty the trash and Downloads, clear temporary files and old logs, or move data off this disk. A full disk breaks updates, logins and applications.",
	})
}

// evalInodes decides disk.inodes. File systems that report no inode
// counts (btrfs, FAT, NTFS) are left out.
func evalInodes(ms []mountUsage, warn, fail float64) *result {
	return evalFill(ms, warn, fail, fillKind{
		what: "inodes",
		pct:  mountUsage.inodePercent,
		has:  func(m mountUsage) bool { return m.inodesTotal > 0 },
		detail: func(m mountUsage) string {
			return fmt.Sprintf("%s of inodes used (%d of %d), %s on %s", fmtPct(m.inodePercent()),
				m.inodesUsed, m.inodesTotal, m.fstype, m.device)
		},
		hint: "The file system has run out of file entries, not bytes: look for a directory with huge numbers of small files (caches, mail queues, session files) and clean it up.",
	})
}

// fillKind says what evalFill measures.
type fillKind struct {
	what   string
	pct    func(mountUsage) float64
	has    func(mountUsage) bool
	detail func(mountUsage) string
	hint   string
}

func evalFill(ms []mountUsage, warn, fail float64, k fillKind) *result {
	r := new(result)
	var rated []mountUsage
	for _, m := range ms {
		switch {
		case m.err != nil:
			r.add(m.mountpoint, "not readable: "+firstLine(m.err.Error()))
		case k.has(m):
			rated = append(rated, m)
		}
	}
	if len(rated) == 0 {
		return r.unavailable("no file system here reports " + k.what + " usage")
	}
	// Fullest first, so the evidence cap drops the least interesting.
	slices.SortStableFunc(rated, func(a, b mountUsage) int {
		return cmp.Or(cmp.Compare(k.pct(b), k.pct(a)), cmp.Compare(a.mountpoint, b.mountpoint))
	})
	status := statusPass
	var bad []string
	for _, m := range rated {
		r.add(m.mountpoint, k.detail(m))
		if l := level(k.pct(m), warn, fail); l != statusPass {
			status = worse(status, l)
			bad = append(bad, m.mountpoint+" "+fmtPct(k.pct(m)))
		}
	}
	top := rated[0]
	switch status {
	case statusFail:
		return r.fail(fmt.Sprintf("%s almost full (%s): %s", k.what, "at or over "+fmtPct(fail), listNames(bad, 3)), k.hint)
	case statusWarn:
		return r.warn(fmt.Sprintf("%s filling up (at or over %s): %s", k.what, fmtPct(warn), listNames(bad, 3)), k.hint)
	}
	return r.pass(fmt.Sprintf("%s fine on %s; fullest %s at %s", k.what,
		plural(len(rated), "file system", "file systems"), top.mountpoint, fmtPct(k.pct(top))))
}
