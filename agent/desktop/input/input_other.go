//go:build !linux

package input

import (
	"fmt"
	"log/slog"
	"runtime"
)

// Open returns an error wrapping ErrNotSupported: this platform has no
// input backend yet.
func Open(display string, logger *slog.Logger) (Injector, error) {
	return nil, fmt.Errorf("%w on %s", ErrNotSupported, runtime.GOOS)
}
