package action

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// recorder is the one fake Executor of these tests: the test machine must
// not really restart its services, flush resolvers it may not have, or
// reboot. It records each argv and answers from replies (keyed by the
// argv joined with spaces); anything else succeeds with no output.
type recorder struct {
	mu      sync.Mutex
	calls   []string
	replies map[string]reply
}

type reply struct {
	out string
	err error
}

var _ Executor = (*recorder)(nil)

func (r *recorder) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	argv := strings.Join(append([]string{name}, args...), " ")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, argv)
	rep := r.replies[argv]
	return []byte(rep.out), rep.err
}

func (r *recorder) argvs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestRunner(e Executor) *Runner {
	return New(Options{Logger: quietLogger(), Exec: e, KillGrace: 300 * time.Millisecond})
}

func killAction(pid int32) *desksidev1.RunAction {
	return &desksidev1.RunAction{Action: &desksidev1.RunAction_KillProcess{KillProcess: &desksidev1.KillProcess{Pid: pid}}}
}

func restartAction(name string) *desksidev1.RunAction {
	return &desksidev1.RunAction{Action: &desksidev1.RunAction_RestartService{RestartService: &desksidev1.RestartService{Name: name}}}
}

func rebootAction(d *durationpb.Duration, msg string) *desksidev1.RunAction {
	return &desksidev1.RunAction{Action: &desksidev1.RunAction_Reboot{Reboot: &desksidev1.Reboot{Delay: d, Message: msg}}}
}

func TestKillRefused(t *testing.T) {
	tests := []struct {
		name string
		pid  int32
		want string
	}{
		{"pid 1", 1, "only processes above pid 1"},
		{"pid 0", 0, "only processes above pid 1"},
		{"negative", -42, "only processes above pid 1"},
		{"the agent", int32(os.Getpid()), "is the agent itself"},
	}
	rec := &recorder{}
	r := newTestRunner(rec)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := r.Run(t.Context(), killAction(tt.pid))
			if res.GetOk() || !strings.Contains(res.GetMessage(), tt.want) || !strings.Contains(res.GetMessage(), "action: refused") {
				t.Errorf("result = %v, want refusal %q", res, tt.want)
			}
		})
	}
	if calls := rec.argvs(); len(calls) != 0 {
		t.Errorf("executor called: %q", calls)
	}
}

func TestServiceNameValidation(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
		base string
	}{
		{"plain", "sshd", true, "sshd"},
		{"with suffix", "sshd.service", true, "sshd"},
		{"template instance", "getty@tty1", true, "getty@tty1"},
		{"dashes and colons", "systemd-resolved:x_y", true, "systemd-resolved:x_y"},
		{"128 characters", strings.Repeat("a", 128), true, strings.Repeat("a", 128)},
		{"empty", "", false, ""},
		{"only the suffix", ".service", false, ""},
		{"shell injection", "ssh; rm -rf /", false, ""},
		{"command substitution", "$(reboot)", false, ""},
		{"path traversal", "../x", false, ""},
		{"slash", "x/y", false, ""},
		{"dot dot", "..", false, ""},
		{"option", "--force", false, ""},
		{"leading dot", ".hidden", false, ""},
		{"space", "a b", false, ""},
		{"newline", "sshd\n", false, ""},
		{"NUL", "sshd\x00", false, ""},
		{"129 characters", strings.Repeat("a", 129), false, ""},
		{"non-ASCII", "sshd\u00e9", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, err := serviceName(tt.in)
			if (err == nil) != tt.ok || base != tt.base {
				t.Fatalf("serviceName(%q) = %q, %v", tt.in, base, err)
			}
			if err != nil && !errors.Is(err, ErrBadRequest) {
				t.Errorf("error %v is not ErrBadRequest", err)
			}
			if tt.ok {
				return
			}
			rec := &recorder{}
			res := newTestRunner(rec).Run(t.Context(), restartAction(tt.in))
			if res.GetOk() || !strings.Contains(res.GetMessage(), "invalid service name") {
				t.Errorf("result = %v", res)
			}
			if calls := rec.argvs(); len(calls) != 0 {
				t.Errorf("refused name reached the executor: %q", calls)
			}
		})
	}
}

func TestRebootDelay(t *testing.T) {
	tests := []struct {
		name string
		in   *durationpb.Duration
		want time.Duration
		err  bool
	}{
		{"unset", nil, 5 * time.Minute, false},
		{"zero means default", durationpb.New(0), 5 * time.Minute, false},
		{"below the minimum", durationpb.New(30 * time.Second), time.Minute, false},
		{"rounded up", durationpb.New(90 * time.Second), 2 * time.Minute, false},
		{"whole minutes", durationpb.New(10 * time.Minute), 10 * time.Minute, false},
		{"above the maximum", durationpb.New(48 * time.Hour), 24 * time.Hour, false},
		{"negative", durationpb.New(-time.Second), 0, true},
		{"invalid", &durationpb.Duration{Seconds: 1, Nanos: -1}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rebootDelay(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("rebootDelay = %v, %v; want %v, err %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestRebootMessage(t *testing.T) {
	tests := []struct {
		name, in string
		delay    time.Duration
		want     string
	}{
		{"default", "", 5 * time.Minute, "Deskside: your support technician has scheduled a restart of this computer in 5 minutes. Please save your work."},
		{"default, one minute", "  ", time.Minute, "Deskside: your support technician has scheduled a restart of this computer in 1 minute. Please save your work."},
		{"default, hours", "", 24 * time.Hour, "Deskside: your support technician has scheduled a restart of this computer in 24 hours. Please save your work."},
		{"custom", "Updates need a restart.", 5 * time.Minute, "Deskside: Updates need a restart."},
		{"escapes and controls", "\x1b[31mSave\nnow\x07\x1b]0;title\x07!", 5 * time.Minute, "Deskside: Save now!"},
		{"looks like an option", "--help me", 5 * time.Minute, "Deskside: help me"},
		{"capped", strings.Repeat("x", 500), 5 * time.Minute, "Deskside: " + strings.Repeat("x", maxRebootMessage-1) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rebootMessage(tt.in, tt.delay); got != tt.want {
				t.Errorf("rebootMessage = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNoAction(t *testing.T) {
	rec := &recorder{}
	res := newTestRunner(rec).Run(t.Context(), &desksidev1.RunAction{})
	if res.GetOk() || !strings.Contains(res.GetMessage(), "no action given") {
		t.Errorf("result = %v", res)
	}
	if res := newTestRunner(rec).Run(t.Context(), rebootAction(durationpb.New(-time.Minute), "")); res.GetOk() {
		t.Errorf("negative delay accepted: %v", res)
	}
	if calls := rec.argvs(); len(calls) != 0 {
		t.Errorf("executor called: %q", calls)
	}
}

func TestSystemExec(t *testing.T) {
	tests := []struct {
		name, tool string
		args       []string
		notFound   bool
	}{
		{"relative path", "../bin/true", nil, true},
		{"absolute path", "/bin/true", nil, true},
		{"missing tool", "deskside-no-such-tool", nil, true},
		{"empty", "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SystemExec{}.Run(t.Context(), tt.tool, tt.args...)
			if errors.Is(err, exec.ErrNotFound) != tt.notFound {
				t.Errorf("Run(%q) = %v", tt.tool, err)
			}
		})
	}
}

func TestCappedBuffer(t *testing.T) {
	var b cappedBuffer
	chunk := []byte(strings.Repeat("a", 40<<10))
	for range 3 {
		if n, err := b.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if len(b.b) != maxToolOutput {
		t.Errorf("kept %d bytes, want %d", len(b.b), maxToolOutput)
	}
}
