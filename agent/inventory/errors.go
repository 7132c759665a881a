package inventory

import "errors"

var (
	// ErrNotSupported is wrapped, with the section name, by every section
	// this platform cannot read, e.g. "disks: inventory: not supported on
	// this platform".
	ErrNotSupported = errors.New("inventory: not supported on this platform")

	// ErrNothingCollected is returned by [Collector.Read] when none of the
	// core sections (hostname, OS, CPU, memory) could be read.
	ErrNothingCollected = errors.New("inventory: nothing could be collected")
)
