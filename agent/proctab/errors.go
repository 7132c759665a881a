package proctab

import "errors"

// ErrNotSupported is wrapped by every function of this package on
// platforms other than Linux and macOS.
var ErrNotSupported = errors.New("proctab: not supported on this platform")
