//go:build !linux && !darwin && !windows

package proctab

import (
	"context"
	"errors"
	"testing"
)

func TestNotSupported(t *testing.T) {
	if _, err := List(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("List: %v", err)
	}
	if _, err := ListUsage(context.Background()); !errors.Is(err, ErrNotSupported) {
		t.Errorf("ListUsage: %v", err)
	}
	if _, err := Read(1); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Read: %v", err)
	}
	if _, err := Owner(1); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Owner: %v", err)
	}
}
