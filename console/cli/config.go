package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/deskside/deskside/internal/atomicfile"
)

// config is the session file: which relay, how to trust it, and the
// session. It holds a bearer token, so it is written 0600 and refused when
// others can read it.
type config struct {
	Relay string `json:"relay"`
	// CAPEM is the relay's CA; empty means the system roots.
	CAPEM      string    `json:"ca_pem,omitempty"`
	Token      string    `json:"session_token,omitempty"`
	Technician string    `json:"technician,omitempty"`
	Role       string    `json:"role,omitempty"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	// TOTPUsers are the technicians who signed in to this relay with a
	// second factor: `deskside login` asks them for a code. (The relay's
	// answer to a refused sign-in never says whether a code was missing.)
	TOTPUsers []string `json:"totp_users,omitempty"`
}

// maxConfigBytes bounds what is read from the session file.
const maxConfigBytes = 1 << 20

// configPath is $DESKSIDE_CONFIG, else <user config dir>/deskside/cli.json.
func (e *runEnv) configPath() (string, error) {
	if p := e.getenv("DESKSIDE_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config directory: %w (set DESKSIDE_CONFIG to a file path)", err)
	}
	return filepath.Join(dir, "deskside", "cli.json"), nil
}

// loadConfig reads the session file. A missing file is ErrNotSignedIn; a
// file readable by group or others is refused (ErrInsecureConfig).
func (e *runEnv) loadConfig() (*config, string, error) {
	path, err := e.configPath()
	if err != nil {
		return nil, "", err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, path, ErrNotSignedIn
	} else if err != nil {
		return nil, path, fmt.Errorf("read session file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, path, fmt.Errorf("read session file: %w", err)
	}
	if err := checkPrivate(path, fi); err != nil {
		return nil, path, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes))
	if err != nil {
		return nil, path, fmt.Errorf("read session file: %w", err)
	}
	cfg := new(config)
	if err := json.Unmarshal(b, cfg); err != nil {
		return nil, path, fmt.Errorf("session file %s is corrupt (%v): delete it and run `deskside login`", path, err)
	}
	return cfg, path, nil
}

// saveConfig writes the session file 0600 (its directory 0700) through a
// temporary file and rename, so a crash never leaves half a file.
func saveConfig(path string, cfg *config) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create the session file's directory: %w", err)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode session file: %w", err)
	}
	return writeAtomic(path, 0o600, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// writeAtomic writes path so that it appears whole or not at all.
var writeAtomic = atomicfile.Write
