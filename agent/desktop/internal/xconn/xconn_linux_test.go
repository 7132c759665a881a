package xconn

import (
	"errors"
	"log/slog"
	"testing"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		display string
		env     Env
		want    string
		wantErr error
	}{
		{name: "explicit display wins", display: ":5", env: Env{SessionType: "wayland", WaylandDisplay: "wayland-0"}, want: ":5"},
		{name: "DISPLAY", env: Env{Display: ":1"}, want: ":1"},
		{name: "XWayland display in a Wayland session", env: Env{Display: ":0", WaylandDisplay: "wayland-0", SessionType: "wayland"}, wantErr: ErrWaylandNotSupported},
		{name: "Wayland only", env: Env{WaylandDisplay: "wayland-0"}, wantErr: ErrWaylandNotSupported},
		{name: "nothing", env: Env{}, wantErr: ErrNoDisplay},
		{name: "x11 session", env: Env{Display: ":0", SessionType: "x11"}, want: ":0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.display, tt.env)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Resolve(%q, %+v) error = %v, want %v", tt.display, tt.env, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Resolve(%q, %+v) = %q, want %q", tt.display, tt.env, got, tt.want)
			}
		})
	}
}

// unreachable is a display number nothing listens on.
const unreachable = ":64999"

func TestDialUnreachable(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	tests := []struct {
		name    string
		display string
		env     Env
		wantErr error
	}{
		{name: "explicit", display: unreachable, wantErr: ErrNoDisplay},
		{name: "DISPLAY", env: Env{Display: unreachable}, wantErr: ErrNoDisplay},
		{name: "DISPLAY unreachable in a Wayland session", env: Env{Display: unreachable, WaylandDisplay: "wayland-0"}, wantErr: ErrWaylandNotSupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := dial(tt.display, tt.env, logger)
			if err == nil {
				c.Close()
				t.Fatalf("dial succeeded")
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("dial error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
