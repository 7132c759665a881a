//go:build linux || windows || (darwin && cgo)

package proctab_test

import (
	"os"
	"os/user"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/proctab"
	"github.com/deskside/deskside/internal/testkit"
)

func TestListUsageHasSelf(t *testing.T) {
	// CPU time is counted in clock ticks (10 ms), so a young test process
	// may have none yet: spin, reading again, until it shows (bounded).
	deadline := time.Now().Add(10 * time.Second)
	for {
		spin(20 * time.Millisecond)
		procs, err := proctab.ListUsage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(procs, func(p proctab.Proc) bool { return p.PID == os.Getpid() })
		if i < 0 {
			t.Fatalf("ListUsage: %d processes, none is this one (%d)", len(procs), os.Getpid())
		}
		p := procs[i]
		if p.CPU > 0 || time.Now().After(deadline) {
			if p.CPU <= 0 || p.RSS < 1<<20 || p.Name == "" {
				t.Errorf("self: %+v, want CPU time, at least 1 MiB resident and a name", p)
			}
			return
		}
	}
}

// spin keeps a CPU busy for about d of wall time.
func spin(d time.Duration) {
	var sink uint64
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := range 1 << 16 {
			sink += uint64(i) * sink
		}
	}
	spinSink = sink
}

var spinSink uint64

func TestOwnerSelf(t *testing.T) {
	got, err := proctab.Owner(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	testkit.Need(t, "the current user's name", err, "run the tests as a user /etc/passwd knows")
	if got != u.Username && !strings.HasSuffix(got, `\`+u.Username) {
		t.Errorf("Owner(self) = %q, want %q", got, u.Username)
	}
}
