package action

import (
	"context"
	"fmt"
	"time"
)

// restartService: macOS services (launchd) are not supported.
func (r *Runner) restartService(context.Context, string) (string, error) {
	return "", fmt.Errorf("restarting services: %w", ErrNotSupported)
}

// flushDNS: not supported on macOS.
func (r *Runner) flushDNS(context.Context) (string, error) {
	return "", fmt.Errorf("flushing DNS: %w", ErrNotSupported)
}

// reboot: not supported on macOS.
func (r *Runner) reboot(context.Context, time.Duration, string) (string, error) {
	return "", fmt.Errorf("rebooting: %w", ErrNotSupported)
}
