package devrun

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/deskside/deskside/internal/atomicfile"
)

// Files and directories inside the data directory.
const (
	stateFile    = "deskside-dev.json" // marks the directory as ours
	passwordFile = "admin-password"    // 0600
	relayDir     = "relay"
	agentDir     = "agent"
	cliFile      = "cli.json"
	logDir       = "logs"
)

// Preferred ports on 127.0.0.1; a busy one is replaced by a free one on the
// first run, and the choice is kept for later runs.
const (
	prefRelayPort = 7443
	prefAdminPort = 7444
	prefWebPort   = 8443
	prefTURNPort  = 3478
)

// Addrs are the relay's listen addresses, chosen on the first run and
// reused so that the enrolled agent and the signed-in CLI keep working.
type Addrs struct {
	Relay string `json:"relay"`
	Admin string `json:"admin"`
	Web   string `json:"web"`
	TURN  string `json:"turn"`
}

// State is what a run reuses from the previous one.
type State struct {
	Dir      string `json:"-"`
	Password string `json:"-"` // kept in its own 0600 file
	Addrs    Addrs  `json:"addrs"`
	// Reused reports whether the data directory held a previous run.
	Reused bool `json:"-"`
}

// RelayDir, AgentDir, CLIConfig, LogDir and PasswordPath are paths inside
// the data directory.
func (s *State) RelayDir() string { return filepath.Join(s.Dir, relayDir) }
func (s *State) AgentDir() string { return filepath.Join(s.Dir, agentDir) }

func (s *State) CLIConfig() string    { return filepath.Join(s.Dir, cliFile) }
func (s *State) LogDir() string       { return filepath.Join(s.Dir, logDir) }
func (s *State) PasswordPath() string { return filepath.Join(s.Dir, passwordFile) }

// CAPath is the relay CA the CLI and the browser can trust.
func (s *State) CAPath() string { return filepath.Join(s.RelayDir(), "ca.pem") }

// ErrNotOurs is returned when asked to start fresh in a directory that
// holds files but no deskside-dev.json, so it is not removed.
var ErrNotOurs = errors.New("refusing to delete a directory that `make run` did not create")

// Open loads the state of the data directory dir, creating it (mode 0700)
// with a new admin password and listen addresses on the first run. With
// fresh, a previous run's directory is deleted first.
func Open(dir string, fresh bool) (*State, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fresh {
		if err := removeDataDir(dir); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the data directory: %w", err)
	}
	s := &State{Dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, s); err != nil {
			return nil, fmt.Errorf("%s is corrupt (%v): start fresh with `make run-clean`", filepath.Join(dir, stateFile), err)
		}
		pw, err := os.ReadFile(s.PasswordPath())
		if err != nil {
			return nil, fmt.Errorf("read the admin password (%w): start fresh with `make run-clean`", err)
		}
		s.Password = strings.TrimSpace(string(pw))
		s.Reused = true
		return s, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, stateFile), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		return nil, fmt.Errorf("%s already holds files but was not created by `make run`: choose another directory with `make run DEV_DATA=DIR` (deskside-dev --data DIR)", dir)
	}
	s.Password = rand.Text()
	s.Addrs = Addrs{
		Relay: freeAddr(prefRelayPort), Admin: freeAddr(prefAdminPort),
		Web: freeAddr(prefWebPort), TURN: freeAddr(prefTURNPort),
	}
	// The state file first: it marks the directory as ours, so a run
	// stopped between the two writes can still be cleaned up.
	js, _ := json.MarshalIndent(s, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(dir, stateFile), append(js, '\n'), 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(s.PasswordPath(), []byte(s.Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

// removeDataDir deletes dir if it is a previous run's data directory (or
// empty, or missing).
func removeDataDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read the data directory: %w", err)
	}
	if len(ents) > 0 {
		if _, err := os.Stat(filepath.Join(dir, stateFile)); err != nil {
			return fmt.Errorf("%w: %s has no %s; delete it yourself or choose another directory with `make run DEV_DATA=DIR`", ErrNotOurs, dir, stateFile)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete the data directory: %w", err)
	}
	return nil
}

// CheckPorts reports the first listen address another program holds (most
// often a `make run` still running).
func (s *State) CheckPorts() error {
	for _, a := range []string{s.Addrs.Relay, s.Addrs.Admin, s.Addrs.Web} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("%s is in use (is another `make run` running? stop it with Ctrl-C), or start fresh on new ports with `make run-clean`: %w", a, err)
		}
		l.Close()
	}
	return nil
}

// freeAddr prefers the given port on 127.0.0.1 and falls back to any free one.
func freeAddr(prefer int) string {
	for _, p := range []int{prefer, 0} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			a := l.Addr().String()
			l.Close()
			return a
		}
	}
	return "127.0.0.1:0"
}

// AgentSocket is the local agent's IPC socket, which the user's tray
// (deskside-tray) reaches it on; "" for the agent's default: as root
// (its helpers, run as the logged-in user, must reach the socket, which a
// private data directory would hide), or when the path is too long for a
// Unix socket.
func (s *State) AgentSocket() string {
	p := filepath.Join(s.Dir, "agent.sock")
	if os.Geteuid() == 0 || len(p) > 100 {
		return ""
	}
	return p
}
