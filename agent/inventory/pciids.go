package inventory

import (
	"errors"
	"io"
	"strings"
)

// pciID is a vendor or vendor/device pair as four lower-case hex digits
// each, without "0x".
type pciID struct{ vendor, device string }

// pciNames resolves ids to names.
type pciNames struct {
	vendors map[string]string
	devices map[pciID]string
}

// parsePCIIDs scans a pci.ids file for the wanted ids only.
//
// Format: "vvvv  Vendor name" at column 0, "\tdddd  Device name" below it,
// "\t\tssss ssss  Subsystem" below that, '#' comments, and after the vendor
// list, class sections starting with "C ".
func parsePCIIDs(r io.Reader, ids []pciID) (pciNames, error) {
	names := pciNames{vendors: map[string]string{}, devices: map[pciID]string{}}
	wantVendor := map[string]bool{}
	wantDevice := map[pciID]bool{}
	for _, id := range ids {
		wantVendor[id.vendor] = true
		wantDevice[id] = true
	}
	if len(ids) == 0 {
		return names, nil
	}
	lr := newLineReader(r)
	vendor := ""
	for {
		b, err := lr.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return names, nil
			}
			return names, err
		}
		line := string(b)
		switch {
		case line == "" || line[0] == '#':
			continue
		case strings.HasPrefix(line, "C "):
			return names, nil // device classes follow; vendors are done
		case strings.HasPrefix(line, "\t\t"):
			continue
		case line[0] == '\t':
			if vendor == "" {
				continue
			}
			id, name, ok := splitPCILine(line[1:])
			if ok && wantDevice[pciID{vendor, id}] {
				names.devices[pciID{vendor, id}] = name
			}
		default:
			id, name, ok := splitPCILine(line)
			vendor = ""
			if ok && wantVendor[id] {
				vendor = id
				names.vendors[id] = name
			}
		}
	}
}

func splitPCILine(s string) (id, name string, ok bool) {
	if len(s) < 6 || s[4] != ' ' {
		return "", "", false
	}
	id = strings.ToLower(s[:4])
	for _, c := range id {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return "", "", false
		}
	}
	name = clean(s[5:])
	return id, name, name != ""
}
