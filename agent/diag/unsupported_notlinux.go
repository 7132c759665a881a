//go:build !linux

package diag

import (
	"context"
	"fmt"
	"net/netip"
)

// The readings below are implemented for Linux only (see the *_linux.go
// twins). Elsewhere they return ErrNotSupported and their checks report
// UNAVAILABLE "not supported on <os> yet".

func defaultGateways() ([]gateway, error) {
	return nil, fmt.Errorf("routes: %w", ErrNotSupported)
}

func neighbour(netip.Addr, string) (neighbourState, error) {
	return neighbourState{}, fmt.Errorf("neighbours: %w", ErrNotSupported)
}

func failedUnits(context.Context, *checkEnv) ([]string, error) {
	return nil, fmt.Errorf("services: %w", ErrNotSupported)
}

func journalErrors(context.Context, *checkEnv) ([]string, error) {
	return nil, fmt.Errorf("system log: %w", ErrNotSupported)
}

func pendingUpdates(context.Context, *checkEnv) (updateInfo, error) {
	return updateInfo{}, fmt.Errorf("updates: %w", ErrNotSupported)
}

func rebootRequired() (rebootInfo, error) {
	return rebootInfo{}, fmt.Errorf("pending reboot: %w", ErrNotSupported)
}

func clockSync(context.Context, *checkEnv) (clockState, error) {
	return clockState{}, fmt.Errorf("clock state: %w", ErrNotSupported)
}

func readMemoryPSI() (memPSI, error) {
	return memPSI{}, fmt.Errorf("memory pressure: %w", ErrNotSupported)
}

func systemProxySettings() (map[string]string, string, error) {
	return nil, "system", fmt.Errorf("system proxy settings: %w", ErrNotSupported)
}
