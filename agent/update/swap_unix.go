//go:build !windows

package update

import "os"

// swap makes next the executable exe, keeping the current one as prev:
// exe is hard-linked to prev, then next renamed over exe, so exe always
// names a whole executable.
func swap(exe, next, prev string) error {
	os.Remove(prev)
	if err := os.Link(exe, prev); err != nil {
		return err
	}
	return os.Rename(next, exe)
}

// restore puts prev back as exe in one rename.
func restore(exe, prev string) error { return os.Rename(prev, exe) }

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
