//go:build !linux

package cli

import "runtime"

var trayExeName = map[bool]string{true: "deskside-tray.exe", false: "deskside-tray"}[runtime.GOOS == "windows"]

// installAutostart returns ErrNoAutostart: the Windows MSI starts the
// tray at login; macOS has no tray icon yet.
func installAutostart(root, exe string) (string, error) { return "", ErrNoAutostart }

// removeAutostart returns ErrNoAutostart.
func removeAutostart(root string) (string, error) { return "", ErrNoAutostart }
