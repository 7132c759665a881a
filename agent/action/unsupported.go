//go:build !linux && !darwin && !windows

package action

import (
	"context"
	"fmt"
	"time"
)

func (r *Runner) killProcess(context.Context, int) (string, error) {
	return "", fmt.Errorf("ending processes: %w", ErrNotSupported)
}

func (r *Runner) restartService(context.Context, string) (string, error) {
	return "", fmt.Errorf("restarting services: %w", ErrNotSupported)
}

func (r *Runner) flushDNS(context.Context) (string, error) {
	return "", fmt.Errorf("flushing DNS: %w", ErrNotSupported)
}

func (r *Runner) reboot(context.Context, time.Duration, string) (string, error) {
	return "", fmt.Errorf("rebooting: %w", ErrNotSupported)
}
