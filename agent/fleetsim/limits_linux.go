package fleetsim

import (
	"fmt"
	"os"
	"syscall"
)

// fileLimit is the hard limit on open files of a process.
func fileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	return l.Max, nil
}

// ephemeralPorts is how many local ports one source address can use.
func ephemeralPorts() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 28000
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || hi <= lo {
		return 28000
	}
	return hi - lo + 1
}
