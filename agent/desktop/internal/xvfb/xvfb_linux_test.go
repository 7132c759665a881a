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
