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
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// TestWithTray: the tray is asked only when the dialog cannot ask (no
// program, or a display it cannot reach); with neither, the error says
// both ways to make asking possible.
func TestWithTray(t *testing.T) {
	none := func(string) (string, error) { return "", exec.ErrNotFound }
	r := session.ConsentRequest{Technician: "alice", Tier: 1}
	var asked int
	tray := func(a desksidev1.DesktopConsent_Answer, err error) Asker {
		return AskerFunc(func(context.Context, session.ConsentRequest) (desksidev1.DesktopConsent_Answer, error) {
			asked++
			return a, err
		})
	}
	w := &WithTray{Dialog: &Dialog{Display: ":0", LookPath: none}, Tray: tray(desksidev1.DesktopConsent_ANSWER_ALLOWED, nil)}
	if a, err := w.Ask(context.Background(), r); err != nil || a != desksidev1.DesktopConsent_ANSWER_ALLOWED || asked != 1 {
		t.Fatalf("no dialog program, a tray: %v %v (asked %d)", a, err, asked)
	}
	w.Tray = tray(0, ErrNoTray)
	if _, err := w.Ask(context.Background(), r); !errors.Is(err, ErrNoTray) ||
		err.Error() != "no way to ask the user: install zenity or kdialog, or start deskside-tray in the user's session" {
		t.Fatalf("neither: %v", err)
	}
	w.Tray = nil
	if _, err := w.Ask(context.Background(), r); !errors.Is(err, ErrNoDialog) {
		t.Fatalf("no tray configured: %v", err)
	}
	// No display at all: nobody to ask on a tray either.
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	asked = 0
	w = &WithTray{Dialog: &Dialog{LookPath: none}, Tray: tray(desksidev1.DesktopConsent_ANSWER_ALLOWED, nil)}
	if _, err := w.Ask(context.Background(), r); err == nil || asked != 0 {
		t.Fatalf("no display: %v (asked %d)", err, asked)
	}
}

// TestWithTrayDisplayGone: zenity cannot open the display, so the tray
// asks.
func TestWithTrayDisplayGone(t *testing.T) {
	_, err := exec.LookPath("zenity")
	testkit.Need(t, "zenity", err, "apt-get install zenity (make deps)")
	r := session.ConsentRequest{Technician: "alice", Tier: 1}
	w := &WithTray{Dialog: &Dialog{Display: ":5987"}, Tray: AskerFunc(func(context.Context, session.ConsentRequest) (desksidev1.DesktopConsent_Answer, error) {
		return desksidev1.DesktopConsent_ANSWER_DENIED, nil
	})}
	if a, err := w.Ask(context.Background(), r); err != nil || a != desksidev1.DesktopConsent_ANSWER_DENIED {
		t.Fatalf("display gone, a tray: %v %v", a, err)
	}
	w.Tray = AskerFunc(func(context.Context, session.ConsentRequest) (desksidev1.DesktopConsent_Answer, error) {
		return 0, ErrNoTray
	})
	if _, err := w.Ask(context.Background(), r); !errors.Is(err, ErrDisplayUnreachable) || !strings.Contains(err.Error(), "start deskside-tray in the user's session") {
		t.Fatalf("display gone, no tray: %v", err)
	}
}
