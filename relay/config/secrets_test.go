//go:build unix

package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deskside/deskside/relay/config"
)

// TestSecrets: secrets come from their *_file keys or inline; inline ones
// need a file other users cannot read; a value and its file set at the
// same level is an error; a higher level wins over a lower one.
func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "admin-password")
	if err := os.WriteFile(pw, []byte("  from the file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withMode := func(text string, mode os.FileMode) string {
		f := writeFile(t, text)
		if err := os.Chmod(f, mode); err != nil {
			t.Fatal(err)
		}
		return f
	}

	// Read from the file its key names, trimmed.
	c, err := load(t, []string{"--config", withMode("admin_password_file: "+pw+"\n", 0o644)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Service().AdminPassword; got != "from the file" {
		t.Errorf("admin password %q, want the file's", got)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings for a 0600 secret file: %v", c.Warnings)
	}

	// Inline in a file only its owner and group read: accepted.
	c, err = load(t, []string{"--config", withMode("admin_password: hunter2\nturn_secret: s3cret\n", 0o640)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc := c.Service(); sc.AdminPassword != "hunter2" || sc.TURNSecret != "s3cret" {
		t.Errorf("inline secrets: %q %q", sc.AdminPassword, sc.TURNSecret)
	}

	// Inline in a file every user reads: refused, naming the line, the
	// key and both ways out, without the secret.
	for _, text := range []string{
		"listen: \":1\"\nadmin_password: hunter2\n",
		"listen: \":1\"\nturn_secret: hunter2\n",
		"listen: \":1\"\ndatabase: postgres://deskside:hunter2@db/deskside\n",
		"listen: \":1\"\ndatabase: postgres://db/deskside?password=hunter2\n",
	} {
		f := withMode(text, 0o644)
		_, err := load(t, []string{"--config", f}, nil)
		var ce *config.Error
		if !errors.Is(err, config.ErrSecretExposed) || !errors.As(err, &ce) || ce.Where != f+":2" ||
			!strings.Contains(err.Error(), "chmod o-r "+f) || !strings.Contains(err.Error(), "_file") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q world-readable: %v", text, err)
		}
	}
	// A database URL without a password is no secret.
	if _, err := load(t, []string{"--config", withMode("database: postgres://deskside@db/deskside?sslmode=verify-full\n", 0o644)}, nil); err != nil {
		t.Errorf("database URL without a password refused: %v", err)
	}
	// A file every user may write is refused whatever it holds.
	f := withMode("listen: \":1\"\n", 0o666)
	if _, err := load(t, []string{"--config", f}, nil); err == nil || !strings.Contains(err.Error(), "chmod o-w "+f) {
		t.Errorf("world-writable file: %v", err)
	}

	// Both at the same level: an error. At different levels: the higher wins.
	if _, err := load(t, []string{"--config", withMode("admin_password: a\nadmin_password_file: "+pw+"\n", 0o600)}, nil); !errors.Is(err, config.ErrValue) ||
		!strings.Contains(err.Error(), "set one of them") {
		t.Errorf("value and file in the file: %v", err)
	}
	c, err = load(t, []string{"--config", withMode("admin_password_file: "+pw+"\n", 0o600)}, env("DESKSIDE_ADMIN_PASSWORD", "from env"))
	if err != nil || c.Service().AdminPassword != "from env" {
		t.Errorf("environment over the file's admin_password_file: %v", err)
	}
	c, err = load(t, []string{"--config", withMode("admin_password: inline\n", 0o600), "--admin-password-file", pw}, nil)
	if err != nil || c.Service().AdminPassword != "from the file" {
		t.Errorf("--admin-password-file over the file's admin_password: %v", err)
	}

	// A missing or empty secret file, and a readable one (a warning).
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	for _, p := range []string{filepath.Join(dir, "missing"), empty} {
		if _, err := load(t, nil, env("DESKSIDE_TURN_SECRET_FILE", p)); err == nil || !strings.Contains(err.Error(), "turn_secret_file") {
			t.Errorf("secret file %s: %v", p, err)
		}
	}
	os.Chmod(pw, 0o644)
	c, err = load(t, []string{"--database-file", pw}, nil)
	if err != nil || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "chmod o-r "+pw) {
		t.Errorf("readable secret file: %v, warnings %q", err, c.Warnings)
	}
}
