package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deskside/deskside/agent/tray"
)

// TestAutostart: install writes the tray's XDG autostart entry, refuses
// to replace someone else's file, and uninstall removes only ours.
func TestAutostart(t *testing.T) {
	root := t.TempDir()
	path, err := installAutostart(root, "/usr/local/bin/deskside-tray")
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(root, tray.AutostartPath) {
		t.Fatalf("path %s", path)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), "Exec=/usr/local/bin/deskside-tray\n") {
		t.Fatalf("entry %q, %v", b, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	// Installing again replaces our own entry.
	if _, err := installAutostart(root, "/usr/bin/deskside-tray"); err != nil {
		t.Fatal(err)
	}
	if got, err := removeAutostart(root); err != nil || got != path {
		t.Fatalf("remove: %q, %v", got, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the entry is still there: %v", err)
	}
	if got, err := removeAutostart(root); err != nil || got != "" {
		t.Fatalf("removing twice: %q, %v", got, err)
	}
	// A file of the same name that is not ours stays.
	os.WriteFile(path, []byte("[Desktop Entry]\nExec=something-else\n"), 0o644)
	if _, err := installAutostart(root, "/usr/bin/deskside-tray"); err == nil || !strings.Contains(err.Error(), "is not Deskside's") {
		t.Fatalf("replacing a foreign entry: %v", err)
	}
	if got, err := removeAutostart(root); err != nil || got != "" {
		t.Fatalf("removing a foreign entry: %q, %v", got, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal("the foreign entry was removed")
	}
}

func TestTrayBeside(t *testing.T) {
	dir := t.TempDir()
	agent := filepath.Join(dir, "deskside-agent")
	if got := trayBeside(agent); got != "" {
		t.Fatalf("no tray: got %q", got)
	}
	os.WriteFile(filepath.Join(dir, "deskside-tray"), []byte("#!/bin/sh\n"), 0o644)
	if got := trayBeside(agent); got != "" {
		t.Fatalf("a non-executable tray: got %q", got)
	}
	os.Chmod(filepath.Join(dir, "deskside-tray"), 0o755)
	if got := trayBeside(agent); got != filepath.Join(dir, "deskside-tray") {
		t.Fatalf("got %q", got)
	}
}
