//go:build !linux && !darwin && !windows

package command

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"time"
)

const scriptFileName = "script"

func lookupAccount(string) (*account, error) {
	return nil, fmt.Errorf("running commands: %w", ErrNotSupported)
}

func buildCmd(*spec, string) (*exec.Cmd, error) {
	return nil, fmt.Errorf("running commands: %w", ErrNotSupported)
}

// tree is a stub: nothing starts on this platform.
type tree struct{}

func startTree(*exec.Cmd, *slog.Logger, ...*os.File) (*tree, error) {
	return nil, fmt.Errorf("running commands: %w", ErrNotSupported)
}

func (*tree) wait() (int, error) { return -1, ErrNotSupported }
func (*tree) leftovers() bool    { return false }
func (*tree) kill(time.Duration) {}
func (*tree) close()             {}
