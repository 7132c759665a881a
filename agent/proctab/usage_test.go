//go:build linux || windows || (darwin && cgo)

package proctab_test

import (
	"os"
	"os/user"
	"strings"
	"testing"

	"github.com/deskside/deskside/agent/proctab"
)

func TestListUsageHasSelf(t *testing.T) {
	for i := 0; i < 1<<22; i++ { // some CPU time of our own
	}
	procs, err := proctab.ListUsage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.PID == os.Getpid() {
			if p.CPU <= 0 || p.RSS < 1<<20 || p.Name == "" {
				t.Errorf("self: %+v, want CPU time, at least 1 MiB resident and a name", p)
			}
			return
		}
	}
	t.Errorf("ListUsage: %d processes, none is this one (%d)", len(procs), os.Getpid())
}

func TestOwnerSelf(t *testing.T) {
	got, err := proctab.Owner(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	if got != u.Username && !strings.HasSuffix(got, `\`+u.Username) {
		t.Errorf("Owner(self) = %q, want %q", got, u.Username)
	}
}
