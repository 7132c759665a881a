//go:build !linux

package webtest

// openFileLimit is unknown here.
func openFileLimit() (uint64, bool) { return 0, false }
