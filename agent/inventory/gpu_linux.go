package inventory

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const sysPCIDevices = "/sys/bus/pci/devices/"

// readGPUs lists PCI display controllers (class 0x03xxxx). Vendor and model
// are named from the PCI ID database when one is installed, else given as
// hex ids ("0x10de"); the driver is the name the driver link points to.
// Machines without PCI (many ARM boards) have no GPUs and no error.
func readGPUs(context.Context) ([]*desksidev1.Gpu, error) {
	ents, err := os.ReadDir(sysPCIDevices)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: %w", SectionGPUs, err)
	}
	type dev struct {
		slot   string
		id     pciID
		driver string
	}
	var devs []dev
	for _, e := range ents {
		dir := sysPCIDevices + e.Name() + "/"
		if !strings.HasPrefix(strings.ToLower(attr(dir+"class")), "0x03") {
			continue
		}
		d := dev{
			slot: e.Name(),
			id:   pciID{vendor: normPCIID(attr(dir + "vendor")), device: normPCIID(attr(dir + "device"))},
		}
		if target, err := os.Readlink(dir + "driver"); err == nil {
			d.driver = clean(filepath.Base(target))
		}
		devs = append(devs, d)
	}
	if len(devs) == 0 {
		return nil, nil
	}
	slices.SortFunc(devs, func(a, b dev) int { return cmp.Compare(a.slot, b.slot) })
	ids := make([]pciID, len(devs))
	for i, d := range devs {
		ids[i] = d.id
	}
	names, _ := lookupPCINames(ids) // names are a nicety; hex ids otherwise
	out := make([]*desksidev1.Gpu, 0, len(devs))
	for _, d := range devs {
		g := &desksidev1.Gpu{Vendor: names.vendors[d.id.vendor], Model: names.devices[d.id], Driver: d.driver}
		if g.Vendor == "" {
			g.Vendor = clean("0x" + d.id.vendor)
		}
		if g.Model == "" {
			g.Model = clean("0x" + d.id.device)
		}
		out = append(out, g)
	}
	return out, nil
}
