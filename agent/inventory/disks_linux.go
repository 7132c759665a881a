package inventory

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const sysBlock = "/sys/block/"

// virtualBlockPrefixes are block devices that are views of other storage,
// never hardware; most also lack the device link that readDisks requires.
var virtualBlockPrefixes = []string{"loop", "ram", "zram", "dm-", "md", "nbd", "fd"}

// readDisks lists whole disks from /sys/block. Model comes from sysfs
// (device/model, device/name for MMC) or udev's ID_MODEL; serial from sysfs
// (device/serial, serial for virtio), udev's ID_SERIAL_SHORT, or the SCSI
// VPD page 0x80 (root-only).
func readDisks(ctx context.Context) ([]*desksidev1.Disk, error) {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SectionDisks, err)
	}
	var out []*desksidev1.Disk
	for _, e := range ents {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		name := e.Name()
		if slices.ContainsFunc(virtualBlockPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		dir := sysBlock + name + "/"
		if _, err := os.Stat(dir + "device"); err != nil {
			continue // no backing bus device: virtual
		}
		sectors, err := strconv.ParseUint(attr(dir+"size"), 10, 64)
		if err != nil || sectors == 0 {
			continue
		}
		d := &desksidev1.Disk{
			Name:       clean(name),
			SizeBytes:  sectors * 512, // always 512-byte units, whatever the logical block size
			Rotational: attr(dir+"queue/rotational") == "1",
			Removable:  attr(dir+"removable") == "1",
			Model:      realValue(attr(dir + "device/model")),
			Serial:     realValue(attr(dir + "device/serial")),
		}
		if d.Model == "" {
			d.Model = realValue(attr(dir + "device/name")) // MMC/SD
		}
		if d.Serial == "" {
			d.Serial = realValue(attr(dir + "serial")) // virtio
		}
		if d.Model == "" || d.Serial == "" {
			udev := udevProps(attr(dir + "dev"))
			if d.Model == "" {
				d.Model = realValue(strings.ReplaceAll(udev["ID_MODEL"], "_", " "))
			}
			if d.Serial == "" {
				d.Serial = realValue(udev["ID_SERIAL_SHORT"])
			}
		}
		if d.Serial == "" {
			d.Serial = realValue(vpdSerial(dir + "device/vpd_pg80"))
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *desksidev1.Disk) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// udevProps reads the E: properties udev recorded for block device
// "major:minor"; missing data yields an empty map.
func udevProps(majMin string) map[string]string {
	props := map[string]string{}
	if majMin == "" || strings.ContainsAny(majMin, "/.") {
		return props
	}
	b, err := readCapped("/run/udev/data/b"+majMin, maxAttrBytes)
	if err != nil {
		return props
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "E:"), "=")
		if ok && strings.HasPrefix(sc.Text(), "E:") {
			props[k] = v
		}
	}
	return props
}

// vpdSerial extracts the unit serial number from a SCSI VPD page 0x80:
// byte 1 is the page code, bytes 2-3 the length, the serial follows.
func vpdSerial(path string) string {
	b, err := readCapped(path, 1024)
	if err != nil || len(b) < 4 || b[1] != 0x80 {
		return ""
	}
	n := int(b[2])<<8 | int(b[3])
	if n > len(b)-4 {
		n = len(b) - 4
	}
	return clean(string(b[4 : 4+n]))
}
