//go:build !linux

package clipboard

import (
	"fmt"
	"runtime"
)

// Open returns an error wrapping ErrNotSupported: this platform has no
// clipboard backend yet.
func Open(cfg Config) (Clipboard, error) {
	return nil, fmt.Errorf("%w on %s", ErrNotSupported, runtime.GOOS)
}
