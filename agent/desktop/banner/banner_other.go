//go:build !linux

package banner

import (
	"fmt"
	"io"
	"runtime"
)

// Open returns an error wrapping ErrNotSupported: this platform has no
// banner yet.
func Open(cfg Config) (io.Closer, error) {
	return nil, fmt.Errorf("%w on %s", ErrNotSupported, runtime.GOOS)
}
