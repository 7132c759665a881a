package tray

import (
	"fmt"
	"strings"
)

// AutostartPath is where the tray's XDG autostart entry goes, so that
// every user's graphical session starts deskside-tray at login (GNOME,
// KDE, Xfce, MATE, Cinnamon and LXQt read it).
const AutostartPath = "/etc/xdg/autostart/deskside-tray.desktop"

// AutostartEntry is the XDG desktop entry that starts the tray at exe
// at login. It is also what the packages install (installer/).
func AutostartEntry(exe string) []byte {
	// The Exec key's reserved characters are quoted (Desktop Entry
	// Specification, "The Exec key").
	q := exe
	if strings.ContainsAny(exe, " \t\"`$\\'><~|&;*?#()") {
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", `$`, `\$`)
		q = `"` + r.Replace(exe) + `"`
	}
	return fmt.Appendf(nil, `[Desktop Entry]
Type=Application
Name=Deskside
Comment=Get help from your help desk, and see and end remote sessions of your screen
Exec=%s
Icon=help-browser
Terminal=false
NoDisplay=true
X-GNOME-Autostart-enabled=true
X-GNOME-Autostart-Delay=2
X-KDE-autostart-after=panel
X-Deskside-Autostart=1
`, q)
}

// IsOurAutostart reports whether an autostart file's content is ours
// (uninstall removes only that).
func IsOurAutostart(b []byte) bool {
	return strings.Contains(string(b), "\nX-Deskside-Autostart=1\n")
}
