//go:build !linux

package webtest

import "errors"

// errNoLowerPriority: the benchmarks lower a process's priority on Linux only.
var errNoLowerPriority = errors.New("lowering a process's priority is done on Linux only")

func lowerPriority(int) error { return errNoLowerPriority }
