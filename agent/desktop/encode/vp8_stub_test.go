//go:build !linux || !cgo || novpx

package encode

import (
	"errors"
	"testing"
)

func TestNewVP8NotCompiled(t *testing.T) {
	if Available {
		t.Fatal("Available is true in the stub build")
	}
	enc, err := NewVP8(Config{Width: 1920, Height: 1080})
	if !errors.Is(err, ErrNotCompiled) || enc != nil {
		t.Fatalf("NewVP8 = %v, %v; want nil, ErrNotCompiled", enc, err)
	}
}
