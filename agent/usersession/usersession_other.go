//go:build !linux && !windows

package usersession

import (
	"context"
	"log/slog"
	"time"

	"github.com/deskside/deskside/internal/localipc"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// DefaultSocket is where the Linux service listens (unused here).
const DefaultSocket = ""

// Config configures a Runner.
type Config struct {
	Socket         string
	Exe            string
	Logger         *slog.Logger
	ConsentTimeout time.Duration
	AskTray        AskTray
	Serve          func(c *localipc.Conn, first *desksidev1.LocalMessage)
}

// Runner is not built on this platform.
type Runner struct{}

// NewRunner returns ErrUnsupported on this platform.
func NewRunner(Config) (*Runner, error) { return nil, ErrUnsupported }

// Close does nothing.
func (r *Runner) Close() error { return nil }

// UseHelper is false: there is no helper on this platform.
func UseHelper(string) bool { return false }

// Run ends at once with ErrUnsupported.
func (r *Runner) Run(context.Context, *desksidev1.StartDesktop, func(*desksidev1.DesktopSignal) error) string {
	return ErrUnsupported.Error()
}

// Signal returns ErrUnsupported.
func (r *Runner) Signal(*desksidev1.DesktopSignal) error { return ErrUnsupported }

// End does nothing.
func (r *Runner) End(string, string) {}

// RunHelper returns ErrUnsupported on this platform.
func RunHelper(context.Context, string, *slog.Logger, time.Duration) error { return ErrUnsupported }
