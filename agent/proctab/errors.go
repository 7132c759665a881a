package proctab

import "errors"

// ErrNotSupported is wrapped by the functions of this package that the
// platform cannot serve: everything but Linux, macOS and Windows; signalling
// (Open) on Windows; CPU and memory (ListUsage) on macOS builds without cgo.
var ErrNotSupported = errors.New("proctab: not supported on this platform")
