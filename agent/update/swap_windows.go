package update

import "os"

// swap makes next the executable exe, keeping the current one as prev.
// Windows cannot replace a running executable but can rename it: exe
// moves to prev, then next to exe.
func swap(exe, next, prev string) error {
	os.Remove(prev)
	if err := os.Rename(exe, prev); err != nil {
		return err
	}
	if err := os.Rename(next, exe); err != nil {
		os.Rename(prev, exe)
		return err
	}
	return nil
}

// restore moves the running (failed) executable aside and prev back.
func restore(exe, prev string) error {
	os.Remove(exe + failedExt)
	if err := os.Rename(exe, exe+failedExt); err != nil {
		return err
	}
	return os.Rename(prev, exe)
}

func syncDir(string) {}
