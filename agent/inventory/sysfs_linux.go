package inventory

import (
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Helpers for the Linux readers: bounded reads of sysfs-like files.

// maxAttrBytes bounds a read of one small attribute file (sysfs, os-release).
const maxAttrBytes = 64 << 10

// readCapped reads at most limit bytes of the file at path.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// readAttr reads a small attribute file (sysfs and the like) and returns it
// cleaned. A missing or unreadable file is an error; callers that treat the
// attribute as optional use attr.
func readAttr(path string) (string, error) {
	b, err := readCapped(path, maxAttrBytes)
	if err != nil {
		return "", err
	}
	return clean(string(b)), nil
}

// attr is readAttr for optional attributes: missing, unreadable (often
// root-only) or empty all yield "".
func attr(path string) string {
	s, _ := readAttr(path)
	return s
}

// isNotExist reports whether err says a file is absent.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist)
}

// pciIDFiles are where distributions install the PCI ID database, in order
// of preference.
var pciIDFiles = []string{
	"/usr/share/hwdata/pci.ids",
	"/usr/share/misc/pci.ids",
	"/usr/share/pci.ids",
	"/usr/share/hwdata/pci.ids.gz",
	"/usr/share/misc/pci.ids.gz",
}

// lookupPCINames opens the first PCI ID database found and resolves ids.
// A missing database yields empty maps and no error.
func lookupPCINames(ids []pciID) (pciNames, error) {
	for _, p := range pciIDFiles {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		defer f.Close()
		var r io.Reader = f
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(f)
			if err != nil {
				return pciNames{}, err
			}
			defer zr.Close()
			r = zr
		}
		// pci.ids is ~1.5 MB; refuse to read absurd amounts.
		return parsePCIIDs(io.LimitReader(r, 64<<20), ids)
	}
	return pciNames{vendors: map[string]string{}, devices: map[pciID]string{}}, nil
}

// normPCIID turns a sysfs id ("0x10de\n") into four lower-case hex digits.
func normPCIID(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "0x")
	return s
}
