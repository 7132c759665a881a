//go:build !linux

package fleetsim

import "errors"

// errNoProcStat is returned where the relay's resource use cannot be read.
var errNoProcStat = errors.New("fleetsim: relay memory and CPU are read from /proc, which only Linux has")

func procStat(int) (uint64, uint64, error) { return 0, 0, errNoProcStat }

const clockTicks = 100
