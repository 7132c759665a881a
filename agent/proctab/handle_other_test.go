//go:build !linux && !darwin

package proctab

import (
	"errors"
	"syscall"
	"testing"
)

func TestOpenNotSupported(t *testing.T) {
	if _, err := Open(Proc{PID: 1}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Open: %v", err)
	}
	var h Handle
	if err := h.Signal(syscall.Signal(9)); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Signal: %v", err)
	}
	if !h.Exited() {
		t.Error("Exited = false")
	}
}
