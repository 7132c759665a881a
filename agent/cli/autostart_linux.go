package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/deskside/deskside/agent/tray"
	"github.com/deskside/deskside/internal/atomicfile"
)

const trayExeName = "deskside-tray"

// installAutostart writes the tray's XDG autostart entry under root, for
// the tray executable exe, and returns its path.
func installAutostart(root, exe string) (string, error) {
	path := filepath.Join(root, tray.AutostartPath)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if b, err := os.ReadFile(path); err == nil && !tray.IsOurAutostart(b) {
		return "", fmt.Errorf("%s exists and is not Deskside's: move it away first", path)
	}
	return path, atomicfile.WriteFile(path, tray.AutostartEntry(exe), 0o644)
}

// removeAutostart removes the entry under root if it is ours; it returns
// its path, or "" when there was none.
func removeAutostart(root string) (string, error) {
	path := filepath.Join(root, tray.AutostartPath)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	if !tray.IsOurAutostart(b) {
		return "", nil
	}
	return path, os.Remove(path)
}
