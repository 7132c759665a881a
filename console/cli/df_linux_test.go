package cli_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/deskside/deskside/agent/inventory"
	"github.com/deskside/deskside/relay/server/servertest"
)

// TestShowFreeSpaceAsDF runs an agent with the real inventory collector and
// checks that `devices show` reports / as df does: FREE is statfs's
// available space (f_bavail × f_bsize), USE% is used / (used + available)
// rounded up.
func TestShowFreeSpaceAsDF(t *testing.T) {
	f := startFleet(t)
	dev := f.agentWith(t, "df-host", inventory.New(nil))
	c := f.admin(t)

	var out string
	servertest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		res := c.run("devices", "show", dev)
		out = res.stdout
		if res.code != 0 || !strings.Contains(out, "\nPartitions\n") {
			return fmt.Errorf("no partitions yet: %s", res)
		}
		return nil
	})
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		t.Fatal(err)
	}
	avail := float64(st.Bavail) * float64(st.Bsize)
	used := float64(st.Blocks-st.Bfree) * float64(st.Bsize)
	dfPct := used * 100 / (used + avail)

	header, row := partitionRow(t, out, "/")
	free := cell(header, row, "FREE", "USE%")
	got, ok := parseSize(free)
	if !ok {
		t.Fatalf("FREE %q is not a size:\n%s", free, out)
	}
	// formatBytes keeps three digits; files come and go between the reads.
	if tol := max(avail/100, 64<<20); got < avail-tol || got > avail+tol {
		t.Errorf("/ FREE %s, statfs available %.0f bytes:\n%s", free, avail, out)
	}
	use := strings.TrimSuffix(cell(header, row, "USE%", ""), "%")
	p, err := strconv.Atoi(use)
	if err != nil {
		t.Fatalf("USE%% %q:\n%s", use, out)
	}
	if float64(p) < dfPct-0.5 || float64(p) > dfPct+1.5 {
		t.Errorf("/ USE%% %d, df's %.2f rounded up:\n%s", p, dfPct, out)
	}
}

// partitionRow finds the header and the row of mount in the Partitions table.
func partitionRow(t *testing.T, out, mount string) (header, row string) {
	t.Helper()
	_, rest, ok := strings.Cut(out, "\nPartitions\n")
	if !ok {
		t.Fatalf("no Partitions section:\n%s", out)
	}
	lines := strings.Split(rest, "\n")
	header = lines[0]
	for _, l := range lines[1:] {
		if l == "" {
			break
		}
		if f := strings.Fields(l); len(f) > 0 && f[0] == mount {
			return header, l
		}
	}
	t.Fatalf("no %s row:\n%s", mount, out)
	return "", ""
}

// cell is the text of row under column from (up to column to, or the end).
func cell(header, row, from, to string) string {
	i := strings.Index(header, from)
	j := len(row)
	if to != "" {
		j = min(j, strings.Index(header, to))
	}
	if i < 0 || i > len(row) {
		return ""
	}
	return strings.TrimSpace(row[i:j])
}

// parseSize reads formatBytes's "77.3 GiB".
func parseSize(s string) (float64, bool) {
	num, unit, ok := strings.Cut(s, " ")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, false
	}
	for i, u := range []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"} {
		if u == unit {
			return n * float64(uint64(1)<<(10*i)), true
		}
	}
	return 0, false
}
