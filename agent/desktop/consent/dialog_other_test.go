//go:build !windows

package consent

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/deskside/deskside/agent/desktop/session"
	"github.com/deskside/deskside/internal/testkit"
)

// Without zenity or kdialog the user cannot be asked, and the error says
// what to install; without a display, that nobody is there to ask.
func TestCannotAsk(t *testing.T) {
	none := func(string) (string, error) { return "", exec.ErrNotFound }
	r := session.ConsentRequest{Technician: "alice", Tier: 2, Control: true}
	d := &Dialog{Display: ":0", LookPath: none}
	if _, err := d.Ask(context.Background(), r); !errors.Is(err, ErrNoDialog) || !strings.Contains(err.Error(), "install zenity") {
		t.Errorf("no dialog program: %v", err)
	}
	if err := d.Notify(context.Background(), r); err == nil || !strings.Contains(err.Error(), "install libnotify-bin (notify-send) or zenity") {
		t.Errorf("no notification program: %v", err)
	}
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	d = &Dialog{}
	if _, err := d.Ask(context.Background(), r); err == nil || !strings.Contains(err.Error(), "no user is logged in to a graphical session") {
		t.Errorf("no display: %v", err)
	}
}

// A display that is not there (the user logged out) is an error, not a
// denial.
func TestDisplayGone(t *testing.T) {
	_, err := exec.LookPath("zenity")
	testkit.Need(t, "zenity", err, "apt-get install zenity (make deps)")
	d := &Dialog{Display: ":5987"}
	a, err := d.Ask(context.Background(), session.ConsentRequest{Technician: "alice", Tier: 2})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the user's display") {
		t.Errorf("Ask on a display nobody serves = %v, %v; want an error", a, err)
	}
}
