package xvfb

import (
	"fmt"
	"os"
	"testing"
)

func TestStartStop(t *testing.T) {
	a := Start(t)
	b := Start(t)
	if a.Display == b.Display {
		t.Fatalf("two servers on %s", a.Display)
	}
	for _, s := range []*Server{a, b} {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", s.Number)); err != nil {
			t.Errorf("%s: socket missing: %v", s.Display, err)
		}
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", a.Number)); !os.IsNotExist(err) {
		t.Errorf("lock file of %s still there after Stop: %v", a.Display, err)
	}
}

// TestClaimedDisplaySkipped: a display number another process holds is
// not tried, and is free again once its holder lets go.
func TestClaimedDisplaySkipped(t *testing.T) {
	// Hold the first display number Start would try now.
	var n int
	var hold *os.File
	first := (os.Getpid() % (displayRange / 10)) * 10
	for i := range maxAttempts {
		n = FirstDisplay + (first+i)%displayRange
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		var ok bool
		if hold, ok = claim(n); ok {
			break
		}
	}
	if hold == nil {
		t.Fatal("no display number could be claimed")
	}
	if again, ok := claim(n); ok {
		again.Close()
		t.Fatal("a claimed display number was claimed twice")
	}
	s := Start(t)
	if s.Number == n {
		t.Fatalf("started on the claimed display %d", n)
	}
	hold.Close()
	if h, ok := claim(n); !ok {
		t.Fatal("not free after its holder let go")
	} else {
		h.Close()
	}
}
