package cli

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/agent/service"
)

func TestStatusText(t *testing.T) {
	st := &enroll.State{DeviceID: "dev-1", Relay: "relay.example:7443", Enrolled: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)}
	tests := []struct {
		name      string
		platform  string
		svc       service.State
		svcErr    error
		st        *enroll.State
		enrollErr error
		want      []string
	}{
		{"running and enrolled", "linux-systemd", service.StateRunning, nil, st, nil,
			[]string{"Service manager  linux-systemd", "installed, running", "device dev-1 with relay relay.example:7443", "2026-11-23"}},
		{"SysV, not installed, not enrolled", "unix-systemv", service.StateNotInstalled, nil, nil, enroll.ErrNotEnrolled,
			[]string{"unix-systemv", "not installed", "Enrolled         no: run deskside-agent enroll --relay HOST:PORT --token TOKEN --state /state"}},
		{"no service manager", "", service.StateUnknown, errors.New("boom"), nil, errors.New("corrupt"),
			[]string{"none detected", "Service          boom", "Enrolled         unknown: corrupt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := statusText(tt.platform, tt.svc, tt.svcErr, "/state", tt.st, tt.enrollErr)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("status lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestStateArgs(t *testing.T) {
	for _, tt := range []struct{ in, want []string }{
		{nil, nil},
		{[]string{"--state", "/x"}, []string{"--state", "/x"}},
		{[]string{"-state=/x"}, []string{"-state=/x"}},
		{[]string{"--other"}, nil},
	} {
		if got := stateArgs(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("stateArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStatusCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), "test", []string{"status", "--state", t.TempDir()}, &out, &errb); code != 0 {
		t.Fatalf("status exited %d: %s", code, errb.String())
	}
	for _, w := range []string{"Service manager", "Service ", "Enrolled         no", "State directory"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("status output lacks %q:\n%s", w, out.String())
		}
	}
}
