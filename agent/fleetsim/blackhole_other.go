//go:build !linux

package fleetsim

import (
	"fmt"
	"net"
	"time"
)

// kernelHole: a blackhole in the kernel (nftables) is Linux-only; elsewhere
// it is simulated at the agents' side.
type kernelHole struct{}

func newKernelHole([]string, int) (*kernelHole, error) {
	return nil, fmt.Errorf("%w: Linux only", errNoKernelHole)
}

func (*kernelHole) drop(time.Duration) error { return errNoKernelHole }

func (*kernelHole) close() {}

func (*kernelHole) String() string { return "not built" }

// consoleLocalAddr: the kernel's choice (no blackhole in the kernel here).
func consoleLocalAddr(string) *net.TCPAddr { return nil }

// removeHoleLeftovers: no tables here.
func removeHoleLeftovers() {}
