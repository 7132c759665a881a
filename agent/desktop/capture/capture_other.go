//go:build !linux

package capture

import (
	"fmt"
	"log/slog"
	"runtime"
)

// Open returns an error wrapping ErrNotSupported: this platform has no
// capture backend yet.
func Open(display string, logger *slog.Logger) (Capturer, error) {
	return nil, fmt.Errorf("%w on %s", ErrNotSupported, runtime.GOOS)
}
