//go:build !linux

package fleetsim

import "errors"

// errNoLimits: elsewhere the simulator assumes the defaults.
var errNoLimits = errors.New("fleetsim: the open-file limit is read on Linux only")

func fileLimit() (uint64, error) { return 0, errNoLimits }

func ephemeralPorts() int { return 16000 }
