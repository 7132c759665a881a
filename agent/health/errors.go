package health

import "errors"

var (
	// ErrNotSupported is wrapped by readings this platform cannot take
	// (temperatures outside Linux, load on Windows, processes on macOS
	// without cgo). Such readings are left empty in the sample.
	ErrNotSupported = errors.New("health: not supported on this platform")

	// ErrNoData is returned by [Sampler.Sample] when neither CPU nor
	// memory could be read.
	ErrNoData = errors.New("health: no CPU or memory reading")
)
