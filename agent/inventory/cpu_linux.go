package inventory

import (
	"context"
	"math"
	"path/filepath"

	"github.com/shirou/gopsutil/v3/cpu"
)

// cpuSockets counts physical packages from sysfs topology, falling back to
// the "physical id" values of /proc/cpuinfo.
func cpuSockets(_ context.Context, infos []cpu.InfoStat) uint32 {
	ids := map[string]bool{}
	files, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/topology/physical_package_id")
	for _, f := range files {
		if v := attr(f); v != "" && v != "-1" {
			ids[v] = true
		}
	}
	if len(ids) == 0 {
		for _, in := range infos {
			if in.PhysicalID != "" {
				ids[in.PhysicalID] = true
			}
		}
	}
	switch {
	case len(ids) > 0 && int64(len(ids)) <= math.MaxUint32:
		return uint32(len(ids))
	case len(infos) > 0:
		return 1
	}
	return 0
}
