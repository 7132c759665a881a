package tray

import (
	"strings"
	"testing"
)

func TestAutostartEntry(t *testing.T) {
	for _, c := range []struct{ exe, exec string }{
		{"/usr/bin/deskside-tray", "Exec=/usr/bin/deskside-tray\n"},
		{`/opt/Desk side/$x"tray`, `Exec="/opt/Desk side/\$x\"tray"` + "\n"},
	} {
		b := AutostartEntry(c.exe)
		if !strings.HasPrefix(string(b), "[Desktop Entry]\nType=Application\n") || !strings.Contains(string(b), c.exec) {
			t.Errorf("entry for %q:\n%s\nwant %q", c.exe, b, c.exec)
		}
		if !IsOurAutostart(b) {
			t.Errorf("IsOurAutostart(entry) = false")
		}
	}
	if IsOurAutostart([]byte("[Desktop Entry]\nExec=other\n")) {
		t.Error("a foreign entry counts as ours")
	}
}
