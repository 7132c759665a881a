package inventory

import (
	"context"
	"fmt"
	"os"
	"strings"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const dmiDir = "/sys/class/dmi/id/"

// readDMI reads the SMBIOS strings the kernel exports. product_serial and
// product_uuid are root-only: unreadable, they stay empty without error.
// Placeholder values ("To Be Filled By O.E.M.") are dropped.
func readDMI(context.Context) (*desksidev1.SystemInfo, *desksidev1.Bios, error) {
	if _, err := os.Stat(dmiDir); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", SectionDMI, err)
	}
	get := func(name string) string { return realValue(attr(dmiDir + name)) }
	sys := &desksidev1.SystemInfo{
		Manufacturer: get("sys_vendor"),
		Model:        get("product_name"),
		Serial:       get("product_serial"),
		Uuid:         strings.ToLower(get("product_uuid")),
	}
	// Lenovo puts the machine-type number in product_name and the
	// marketing name ("ThinkPad X1 Carbon Gen 9") in product_version.
	if strings.EqualFold(sys.Manufacturer, "LENOVO") {
		if v := get("product_version"); v != "" {
			sys.Model = v
		}
	}
	if sys.Serial == "" {
		sys.Serial = get("chassis_serial")
	}
	bios := &desksidev1.Bios{
		Vendor:  get("bios_vendor"),
		Version: get("bios_version"),
		Date:    get("bios_date"),
	}
	return sys, bios, nil
}
