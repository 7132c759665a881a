//go:build !linux

package inventory

import (
	"context"
	"fmt"
	"math"

	"github.com/shirou/gopsutil/v3/cpu"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// The readers below are implemented for Linux only (see the *_linux.go
// twins). Elsewhere they report ErrNotSupported wrapped with their section.

func readDMI(context.Context) (*desksidev1.SystemInfo, *desksidev1.Bios, error) {
	return nil, nil, fmt.Errorf("%s: %w", SectionDMI, ErrNotSupported)
}

func readDisks(context.Context) ([]*desksidev1.Disk, error) {
	return nil, fmt.Errorf("%s: %w", SectionDisks, ErrNotSupported)
}

func readSoftware(context.Context) ([]*desksidev1.Software, error) {
	return nil, fmt.Errorf("%s: %w", SectionSoftware, ErrNotSupported)
}

func readGPUs(context.Context) ([]*desksidev1.Gpu, error) {
	return nil, fmt.Errorf("%s: %w", SectionGPUs, ErrNotSupported)
}

func readBatteries(context.Context) ([]*desksidev1.Battery, error) {
	return nil, fmt.Errorf("%s: %w", SectionBatteries, ErrNotSupported)
}

// nicSpeedMbps is unknown here; the NIC is still reported, with speed 0.
func nicSpeedMbps(string) (uint64, error) {
	return 0, fmt.Errorf("%s: link speed: %w", SectionNICs, ErrNotSupported)
}

// cpuSockets: gopsutil returns one entry per socket on Windows
// (Win32_Processor) and a single entry on macOS.
func cpuSockets(_ context.Context, infos []cpu.InfoStat) uint32 {
	if int64(len(infos)) > math.MaxUint32 {
		return 0
	}
	return uint32(len(infos))
}
