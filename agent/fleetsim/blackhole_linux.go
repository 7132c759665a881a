package fleetsim

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// kernelHole blackholes the traffic between the simulated agents and the
// relays in the kernel: an nftables table of this process's own (named
// after its pid) drops every TCP segment from the agents' loopback source
// addresses to a relay's port and back, in the output hook that loopback
// traffic passes. Nothing is answered: new connections' SYNs go unanswered
// until their dial times out, established connections retransmit, and
// when the table is deleted both sides resume on their own, as after a
// real outage. The console dials from an address outside the agents'
// range (consoleSource), so it is not cut off. Run removes the tables of
// simulators that died during a blackhole at every start
// (removeHoleLeftovers).
type kernelHole struct {
	nft   string
	table string
	rules string

	mu    sync.Mutex
	on    bool
	end   time.Time
	timer *time.Timer
}

// holeTablePrefix names the tables; a table whose pid is gone is a
// leftover of a simulator that died during a blackhole, deleted at the
// next start.
const holeTablePrefix = "deskside_fleetsim_"

// findNFT is the nft program, when this process may change the
// kernel's tables with it.
func findNFT() (string, error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%w: not running as root", errNoKernelHole)
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		return "", fmt.Errorf("%w: nft not found (install the Debian package nftables: make deps)", errNoKernelHole)
	}
	return nft, nil
}

func newKernelHole(relays []string, sources int) (*kernelHole, error) {
	nft, err := findNFT()
	if err != nil {
		return nil, err
	}
	h := &kernelHole{nft: nft, table: holeTablePrefix + strconv.Itoa(os.Getpid())}
	agents := "127.0.0.1-" + agentSource(max(sources, 1)).String()
	var rules strings.Builder
	for _, r := range relays {
		host, port, err := net.SplitHostPort(r)
		ip := net.ParseIP(host)
		if err != nil || ip == nil || ip.To4() == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("%w: relay %s is not an IPv4 loopback address", errNoKernelHole, r)
		}
		fmt.Fprintf(&rules, "add rule inet %[1]s out ip saddr %[2]s ip daddr %[3]s tcp dport %[4]s drop\n", h.table, agents, ip, port)
		fmt.Fprintf(&rules, "add rule inet %[1]s out ip saddr %[3]s tcp sport %[4]s ip daddr %[2]s drop\n", h.table, agents, ip, port)
	}
	h.rules = rules.String()
	// The kernel must take the table (nf_tables, CAP_NET_ADMIN).
	if err := h.nftRun(fmt.Sprintf("add table inet %s\ndelete table inet %s\n", h.table, h.table)); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoKernelHole, err)
	}
	return h, nil
}

func (h *kernelHole) String() string {
	return "nftables table " + h.table + " drops the agents' TCP to and from the relays"
}

// nftRun runs an nft script.
func (h *kernelHole) nftRun(script string) error { return nftRun(h.nft, script) }

// nftRun runs an nft script with the nft program.
func nftRun(nft, script string) error {
	cmd := exec.Command(nft, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// removeHoleLeftovers deletes the blackhole tables of simulators that
// are gone (one that died during a blackhole), which would otherwise keep
// dropping traffic; it does nothing without root or nft.
func removeHoleLeftovers() {
	nft, err := findNFT()
	if err != nil {
		return
	}
	out, err := exec.Command(nft, "list", "tables").Output()
	if err != nil {
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text()) // table inet NAME
		if len(f) != 3 || !strings.HasPrefix(f[2], holeTablePrefix) {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(f[2], holeTablePrefix))
		if err != nil {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			nftRun(nft, "delete table inet "+f[2]+"\n")
		}
	}
}

// drop starts a blackhole of d, or extends the one on.
func (h *kernelHole) drop(d time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	end := time.Now().Add(d)
	if !h.on {
		script := fmt.Sprintf("add table inet %[1]s\nadd chain inet %[1]s out { type filter hook output priority 0; policy accept; }\n%[2]s", h.table, h.rules)
		if err := h.nftRun(script); err != nil {
			h.nftRun("delete table inet " + h.table + "\n")
			return err
		}
		h.on, h.end = true, end
		h.timer = time.AfterFunc(d, h.lift)
		return nil
	}
	if end.After(h.end) {
		h.end = end
		h.timer.Reset(time.Until(end))
	}
	return nil
}

// lift ends the blackhole when its time is up (the timer's callback).
func (h *kernelHole) lift() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.on {
		return
	}
	if left := time.Until(h.end); left > 0 {
		// Extended while this call waited for the lock.
		h.timer.Reset(left)
		return
	}
	h.deleteLocked()
}

// deleteLocked deletes the table; h.mu is held. A table that cannot be
// deleted stays recorded as on, for close to try again.
func (h *kernelHole) deleteLocked() {
	for try := range 3 {
		if try > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		if h.nftRun("delete table inet "+h.table+"\n") == nil {
			h.on = false
			return
		}
	}
}

// close ends a blackhole still on.
func (h *kernelHole) close() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.timer != nil {
		h.timer.Stop()
	}
	if h.on {
		h.deleteLocked()
	}
}

// consoleSource is the address the simulator's console requests and its
// relay readiness checks come from when the relay is on loopback: far
// outside the agents' range (agentSource, 127.0.0.1 upwards), so a
// blackhole in the kernel leaves them alone.
var consoleSource = net.IPv4(127, 254, 0, 1)

// consoleLocalAddr is the local address to dial a relay at addr from for
// console requests (nil: the kernel's choice).
func consoleLocalAddr(addr string) *net.TCPAddr {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return nil
	}
	return &net.TCPAddr{IP: consoleSource}
}
