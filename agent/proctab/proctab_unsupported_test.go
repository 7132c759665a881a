//go:build !linux && !darwin

package proctab

import (
	"errors"
	"syscall"
	"testing"
)

func TestNotSupported(t *testing.T) {
	if _, err := List(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("List: %v", err)
	}
	if _, err := Read(1); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Read: %v", err)
	}
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
