package fleetsim

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat reads a process's resident memory and the CPU time it used
// so far (user + system), from /proc.
func procStat(pid int) (rssBytes uint64, cpuTicks uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("fleetsim: unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// Fields after the name: state is f[0], utime f[11], stime f[12], rss f[21].
	if len(f) < 22 {
		return 0, 0, fmt.Errorf("fleetsim: short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	rss, _ := strconv.ParseUint(f[21], 10, 64)
	return rss * uint64(os.Getpagesize()), ut + st, nil
}

// clockTicks is the kernel's USER_HZ, 100 on every Linux port Go supports.
const clockTicks = 100
