package fleetsim

import (
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/internal/testkit"
)

// TestKernelBlackhole: with the nftables table on, nothing passes between
// an agent's source address and the relay's port (an established
// connection's data waits, a new connection does not open), while the
// console's source address still reaches the relay; once lifted, the
// waiting data arrives on the same connection, and no table is left.
func TestKernelBlackhole(t *testing.T) {
	lis := echoListener(t)
	h, err := newKernelHole([]string{lis.Addr().String()}, 2)
	testkit.Need(t, "a blackhole in the kernel (nftables)", err, "run the tests as root with the Debian package nftables installed (make deps)")
	defer h.close()
	dialFrom := func(ctx context.Context, ip net.IP) (net.Conn, error) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
		return d.DialContext(ctx, "tcp4", lis.Addr().String())
	}
	agent, err := dialFrom(context.Background(), net.IPv4(127, 0, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	echo := func(c net.Conn, within time.Duration) error {
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(within))
		defer c.SetReadDeadline(time.Time{})
		buf := make([]byte, 4)
		_, err := io.ReadFull(c, buf)
		return err
	}
	if err := echo(agent, holeWait); err != nil {
		t.Fatalf("before the blackhole: %v", err)
	}

	const hole = 2 * time.Second
	if err := h.drop(hole); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := echo(agent, 500*time.Millisecond); err == nil {
		t.Fatal("an echo went through the blackhole")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if c, err := dialFrom(ctx, net.IPv4(127, 0, 0, 1)); err == nil {
		c.Close()
		t.Error("a new connection from an agent's address opened during the blackhole")
	}
	cancel()
	console, err := dialFrom(context.Background(), consoleSource)
	if err != nil {
		t.Fatalf("the console's address is cut off too: %v", err)
	}
	if err := echo(console, holeWait); err != nil {
		t.Errorf("the console's echo during the blackhole: %v", err)
	}
	console.Close()

	// The ping written during the blackhole is retransmitted once it is
	// lifted: its echo (and the second ping's) arrive on the same
	// connection.
	agent.SetReadDeadline(time.Now().Add(hole + holeWait))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(agent, buf); err != nil {
		t.Fatalf("after the blackhole: %v", err)
	}
	if waited := time.Since(began); waited < hole-100*time.Millisecond {
		t.Errorf("the echo came %s into a %s blackhole", waited, hole)
	}
	if err := echo(agent, holeWait); err != nil {
		t.Errorf("after the blackhole: %v", err)
	}
	out, _ := exec.Command(h.nft, "list", "tables").Output()
	if strings.Contains(string(out), h.table) {
		t.Errorf("table %s left after the blackhole", h.table)
	}
	// A blackhole extended before it ends lasts until the later end.
	if err := h.drop(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := h.drop(time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if out, _ := exec.Command(h.nft, "list", "tables").Output(); !strings.Contains(string(out), h.table) {
		t.Error("an extended blackhole ended at its first end")
	}
	h.close()
	if out, _ := exec.Command(h.nft, "list", "tables").Output(); strings.Contains(string(out), h.table) {
		t.Errorf("table %s left after close", h.table)
	}
	// Past 255 source addresses the range goes on in the next /24, and
	// stays clear of the console's address.
	big, err := newKernelHole([]string{lis.Addr().String()}, 300)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(big.rules, "127.0.0.1-127.0.1.44 ") || strings.Contains(big.rules, consoleSource.String()) {
		t.Errorf("rules for 300 source addresses:\n%s", big.rules)
	}
	if _, err := newKernelHole([]string{"10.0.0.1:443"}, 1); !errors.Is(err, errNoKernelHole) {
		t.Errorf("a relay off loopback: %v, want %v", err, errNoKernelHole)
	}
}

// holeWait bounds a wait that should succeed.
const holeWait = 10 * time.Second
