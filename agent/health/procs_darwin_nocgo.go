//go:build darwin && !cgo

package health

import (
	"context"
	"fmt"
)

// procReader is a stub: without cgo, gopsutil reads each process on macOS
// by spawning ps, far too costly every 15 s.
type procReader struct{}

func newProcReader() *procReader { return &procReader{} }

func (*procReader) read(context.Context) (map[procKey]procSample, error) {
	return nil, fmt.Errorf("processes (macOS without cgo): %w", ErrNotSupported)
}

func (*procReader) details(_ context.Context, _ procKey, p procSample) (string, string) {
	return p.name, ""
}

func (*procReader) forget(map[procKey]procSample) {}
