package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrNoAutostart: this platform's tray autostart is not set by
// `deskside-agent install` (the Windows MSI sets it; macOS has no tray yet).
var ErrNoAutostart = errors.New("starting deskside-tray at login is not set up by `deskside-agent install` on this platform")

// trayBeside is the deskside-tray executable next to the agent's, or "".
func trayBeside(agentExe string) string {
	p := filepath.Join(filepath.Dir(agentExe), trayExeName)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return p
	}
	return ""
}

// autostartAfter sets up (install) or removes (uninstall) the tray's
// start at login beside the service, and says what it did.
func autostartAfter(action string, stdout io.Writer) {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	switch action {
	case "install":
		tray := trayBeside(exe)
		if tray == "" {
			fmt.Fprintf(stdout, "No %s next to %s: users get no tray (Get help, session indicator) until it is installed there and `deskside-agent install` runs again.\n", trayExeName, exe)
			return
		}
		path, err := installAutostart("/", tray)
		switch {
		case errors.Is(err, ErrNoAutostart):
			fmt.Fprintf(stdout, "%v: start %s in each user's session yourself.\n", err, tray)
		case err != nil:
			fmt.Fprintf(stdout, "The tray will not start at login: %v (run the install again as root).\n", err)
		default:
			fmt.Fprintf(stdout, "The tray starts at each user's next login (%s); a user already logged in can run %s now.\n", path, tray)
		}
	case "uninstall":
		if path, err := removeAutostart("/"); err == nil && path != "" {
			fmt.Fprintf(stdout, "removed %s (the tray no longer starts at login)\n", path)
		} else if err != nil && !errors.Is(err, ErrNoAutostart) {
			fmt.Fprintf(stdout, "could not remove the tray's autostart entry: %v\n", err)
		}
	}
}
