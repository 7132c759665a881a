package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/agent/service"
	"github.com/deskside/deskside/agent/update"
	"github.com/deskside/deskside/proto/wire/envelope"
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

// TestEnrollKeepExisting: an installer that runs enroll again on upgrade
// (the Windows MSI) passes --keep-existing; an existing identity is kept
// and the command succeeds without using the token, while a plain enroll
// still refuses to replace it.
func TestEnrollKeepExisting(t *testing.T) {
	state := t.TempDir()
	// An identity exists: Enroll looks for agent.json before anything else.
	if err := os.WriteFile(filepath.Join(state, "agent.json"), []byte(`{"relay":"relay.example:7443","device_id":"dev-1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"enroll", "--relay", "relay.example:7443", "--token", "not-a-token", "--state", state}
	var out, errb bytes.Buffer
	if code := Main(context.Background(), "test", args, &out, &errb); code != 1 || !strings.Contains(errb.String(), "already enrolled") {
		t.Fatalf("enroll over an identity: exit %d, stderr %q; want 1 and \"already enrolled\"", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := Main(context.Background(), "test", append(args, "--keep-existing"), &out, &errb); code != 0 {
		t.Fatalf("enroll --keep-existing over an identity: exit %d, stderr %q", code, errb.String())
	}
	if !strings.Contains(out.String(), "Already enrolled") || !strings.Contains(out.String(), "enroll --force") {
		t.Errorf("enroll --keep-existing said %q", out.String())
	}
	errb.Reset()
	if code := Main(context.Background(), "test", append(args, "--keep-existing", "--force"), &out, &errb); code != 1 || !strings.Contains(errb.String(), "contradict") {
		t.Errorf("--keep-existing with --force: exit %d, stderr %q", code, errb.String())
	}
	// Without an identity, --keep-existing enrolls as usual: the bad token is refused.
	errb.Reset()
	fresh := []string{"enroll", "--relay", "relay.example:7443", "--token", "not-a-token", "--state", t.TempDir(), "--keep-existing"}
	if code := Main(context.Background(), "test", fresh, &out, &errb); code != 1 {
		t.Errorf("enroll --keep-existing with a bad token and no identity: exit %d, stderr %q", code, errb.String())
	}
}

// TestLogUpdatePin: without a pinned release key the agent says at start
// that auto-update is off and how to turn it on; with one, that it is on.
func TestLogUpdatePin(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	logUpdatePin(slog.New(slog.NewTextHandler(&buf, nil)), dir)
	if s := buf.String(); !strings.Contains(s, "auto-update is off") || !strings.Contains(s, "deskside-agent update pin FINGERPRINT --state "+dir) {
		t.Errorf("no pin: %s", s)
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	fp := envelope.Fingerprint(pub)
	if err := update.Pin(dir, fp); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	logUpdatePin(slog.New(slog.NewTextHandler(&buf, nil)), dir)
	if s := buf.String(); !strings.Contains(s, "auto-update is on") || !strings.Contains(s, fp) {
		t.Errorf("pinned: %s", s)
	}
}
