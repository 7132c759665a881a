//go:build !linux

package cursor

import (
	"fmt"
	"runtime"
)

// Open returns an error wrapping ErrNotSupported: this platform has no
// cursor backend yet.
func Open(cfg Config) (Tracker, error) {
	return nil, fmt.Errorf("%w on %s", ErrNotSupported, runtime.GOOS)
}
