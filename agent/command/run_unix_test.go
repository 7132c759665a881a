//go:build linux || darwin

package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/deskside/deskside/agent/proctab/proctabtest"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestRunner(o Options) *Runner {
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	return New(o)
}

// collector records emitted chunks; tests read it while Run runs.
type collector struct {
	mu     sync.Mutex
	chunks []*desksidev1.CommandOutput
	// fail, when set, is returned by emit for chunks from that call on.
	failAt int
	calls  int
}

func (c *collector) emit(m *desksidev1.CommandOutput) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.failAt > 0 && c.calls >= c.failAt {
		return errors.New("console went away")
	}
	c.chunks = append(c.chunks, m)
	return nil
}

// text returns the concatenated output of stream s, or of both when s is
// unspecified.
func (c *collector) text(s desksidev1.CommandStream) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, m := range c.chunks {
		if s == desksidev1.CommandStream_COMMAND_STREAM_UNSPECIFIED || m.GetStream() == s {
			b.Write(m.GetData())
		}
	}
	return b.String()
}

func (c *collector) all() []*desksidev1.CommandOutput {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*desksidev1.CommandOutput(nil), c.chunks...)
}

// checkSeq fails unless the chunks are numbered 1, 2, 3, ...
func checkSeq(t *testing.T, chunks []*desksidev1.CommandOutput) {
	t.Helper()
	for i, m := range chunks {
		if m.GetSeq() != uint64(i+1) {
			t.Fatalf("chunk %d has seq %d", i, m.GetSeq())
		}
	}
}

// runAsync runs req in a goroutine; the channel yields the exit record.
func runAsync(ctx context.Context, r *Runner, req *desksidev1.RunCommand, c *collector) <-chan *desksidev1.CommandExit {
	done := make(chan *desksidev1.CommandExit, 1)
	go func() { done <- r.Run(ctx, req, c.emit) }()
	return done
}

// await returns the exit record, failing the test after timeout.
func await(t *testing.T, done <-chan *desksidev1.CommandExit, timeout time.Duration) *desksidev1.CommandExit {
	t.Helper()
	select {
	case res := <-done:
		return res
	case <-time.After(timeout):
		t.Fatalf("Run did not return within %v", timeout)
		return nil
	}
}

func TestRun(t *testing.T) {
	t.Setenv("DESKSIDE_TEST_SECRET", "hunter2")
	acct, err := lookupAccount("")
	if err != nil {
		t.Fatal(err)
	}
	home := workDir(acct)
	_, bashErr := os.Stat("/bin/bash")
	tests := []struct {
		name            string
		req             *desksidev1.RunCommand
		skip            bool
		stdout, stderr  string
		code            int32
		errContains     string
		stdoutHasPrefix bool
	}{
		{name: "stdout", req: &desksidev1.RunCommand{Command: "echo hello"}, stdout: "hello\n"},
		{name: "stderr", req: &desksidev1.RunCommand{Command: "echo oops >&2"}, stderr: "oops\n"},
		{name: "both streams", req: &desksidev1.RunCommand{Command: "echo out; echo err >&2; echo out2"}, stdout: "out\nout2\n", stderr: "err\n"},
		{name: "exit code", req: &desksidev1.RunCommand{Command: "echo bye; exit 3"}, stdout: "bye\n", code: 3},
		{name: "killed by a signal", req: &desksidev1.RunCommand{Command: "kill -9 $$"}, code: -1},
		{name: "no output", req: &desksidev1.RunCommand{Command: "true"}},
		{name: "stdin is /dev/null", req: &desksidev1.RunCommand{Command: "cat; echo done"}, stdout: "done\n"},
		{
			name:   "fixed environment",
			req:    &desksidev1.RunCommand{Command: `echo "$LANG|$PATH|$HOME|$TERM"; env | grep -c DESKSIDE_TEST_SECRET`},
			stdout: "C.UTF-8|" + defaultPath + "|" + home + "|dumb\n0\n", code: 1,
		},
		{name: "working directory", req: &desksidev1.RunCommand{Command: "pwd"}, stdout: home + "\n"},
		{name: "script without #!", req: &desksidev1.RunCommand{Script: "echo plain\nexit 4\n"}, stdout: "plain\n", code: 4},
		{name: "sh script", req: &desksidev1.RunCommand{Script: "#!/bin/sh\necho \"sh $#\"\n"}, stdout: "sh 0\n"},
		{name: "script with CRLF #! line", req: &desksidev1.RunCommand{Script: "#!/bin/sh\r\necho crlf\n"}, stdout: "crlf\n"},
		{name: "env script", req: &desksidev1.RunCommand{Script: "#!/usr/bin/env sh\necho via env\n"}, stdout: "via env\n"},
		{name: "bash script", req: &desksidev1.RunCommand{Script: "#!/bin/bash\n[[ -n $BASH_VERSION ]] && echo bash\n"}, stdout: "bash\n", skip: bashErr != nil},
		{name: "neither command nor script", req: &desksidev1.RunCommand{}, code: -1, errContains: "exactly one of command and script"},
		{name: "both command and script", req: &desksidev1.RunCommand{Command: "true", Script: "true"}, code: -1, errContains: "exactly one of command and script"},
		{name: "negative timeout", req: &desksidev1.RunCommand{Command: "true", Timeout: durationpb.New(-time.Second)}, code: -1, errContains: "negative timeout"},
		{name: "relative interpreter", req: &desksidev1.RunCommand{Script: "#!sh\ntrue\n"}, code: -1, errContains: "not an absolute path"},
		{name: "missing interpreter", req: &desksidev1.RunCommand{Script: "#!/nonexistent/interp\ntrue\n"}, code: -1, errContains: "command: start:"},
		{name: "unknown user", req: &desksidev1.RunCommand{Command: "true", RunAs: "no-such-user-deskside"}, code: -1, errContains: "unknown user"},
	}
	r := newTestRunner(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip {
				testkit.Need(t, "/bin/bash", bashErr, "install the Debian package bash")
			}
			c := &collector{}
			res := r.Run(t.Context(), tt.req, c.emit)
			if !strings.Contains(res.GetError(), tt.errContains) || (tt.errContains == "" && res.GetError() != "") {
				t.Errorf("error = %q, want it to contain %q", res.GetError(), tt.errContains)
			}
			if res.GetExitCode() != tt.code {
				t.Errorf("exit code = %d, want %d", res.GetExitCode(), tt.code)
			}
			if got := c.text(out); got != tt.stdout {
				t.Errorf("stdout = %q, want %q", got, tt.stdout)
			}
			if got := c.text(errS); got != tt.stderr {
				t.Errorf("stderr = %q, want %q", got, tt.stderr)
			}
			if res.GetTimedOut() || res.GetCanceled() || res.GetTruncated() {
				t.Errorf("flags = %v", res)
			}
			if want := uint64(len(tt.stdout) + len(tt.stderr)); res.GetOutputBytes() != want {
				t.Errorf("output_bytes = %d, want %d", res.GetOutputBytes(), want)
			}
			if res.GetDuration() == nil {
				t.Error("no duration")
			}
			checkSeq(t, c.all())
		})
	}
}

func TestStreamingOrder(t *testing.T) {
	const lines = 2000
	r := newTestRunner(Options{ChunkBytes: 512, FlushInterval: 20 * time.Millisecond})
	c := &collector{}
	// Small pauses every 100 lines make the output arrive in many reads.
	cmd := fmt.Sprintf(`i=1; while [ $i -le %d ]; do echo $i; [ $((i %% 100)) -eq 0 ] && sleep 0.01; i=$((i+1)); done`, lines)
	res := r.Run(t.Context(), &desksidev1.RunCommand{Command: cmd}, c.emit)
	if res.GetExitCode() != 0 || res.GetError() != "" {
		t.Fatalf("exit = %v", res)
	}
	var want strings.Builder
	for i := 1; i <= lines; i++ {
		fmt.Fprintln(&want, i)
	}
	chunks := c.all()
	checkSeq(t, chunks)
	if got := c.text(out); got != want.String() {
		t.Fatalf("output differs: got %d bytes, want %d", len(got), want.Len())
	}
	if len(chunks) < 18 {
		t.Errorf("only %d chunks", len(chunks))
	}
	for _, m := range chunks {
		if len(m.GetData()) > 512 || m.GetStream() != out {
			t.Errorf("chunk %d: %d bytes on %v", m.GetSeq(), len(m.GetData()), m.GetStream())
		}
	}
	if res.GetOutputBytes() != uint64(want.Len()) {
		t.Errorf("output_bytes = %d, want %d", res.GetOutputBytes(), want.Len())
	}
}

func TestStreamsInterleaved(t *testing.T) {
	r := newTestRunner(Options{})
	c := &collector{}
	res := r.Run(t.Context(), &desksidev1.RunCommand{Command: "echo a; sleep 0.1; echo b >&2; sleep 0.1; echo c"}, c.emit)
	if res.GetExitCode() != 0 {
		t.Fatalf("exit = %v", res)
	}
	var got []string
	for _, m := range c.all() {
		got = append(got, fmt.Sprintf("%v:%s", m.GetStream(), m.GetData()))
	}
	want := []string{"COMMAND_STREAM_STDOUT:a\n", "COMMAND_STREAM_STDERR:b\n", "COMMAND_STREAM_STDOUT:c\n"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("chunks = %q, want %q", got, want)
	}
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		name    string
		command string
	}{
		{"sleep", "echo started; sleep 60"},
		{"SIGTERM ignored", "trap '' TERM; echo started; sleep 60"},
	}
	r := newTestRunner(Options{KillGrace: 200 * time.Millisecond})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &collector{}
			began := time.Now()
			res := await(t, runAsync(t.Context(), r, &desksidev1.RunCommand{Command: tt.command, Timeout: durationpb.New(300 * time.Millisecond)}, c), 10*time.Second)
			if !res.GetTimedOut() || res.GetExitCode() != -1 || res.GetCanceled() {
				t.Errorf("exit = %v, want timed out with -1", res)
			}
			if d := time.Since(began); d > 3*time.Second {
				t.Errorf("Run took %v", d)
			}
			if c.text(out) != "started\n" {
				t.Errorf("stdout = %q", c.text(out))
			}
		})
	}
}

func TestDefaultTimeout(t *testing.T) {
	r := newTestRunner(Options{DefaultTimeout: 200 * time.Millisecond})
	res := await(t, runAsync(t.Context(), r, &desksidev1.RunCommand{Command: "sleep 60"}, &collector{}), 10*time.Second)
	if !res.GetTimedOut() {
		t.Errorf("exit = %v, want timed out", res)
	}
}

func TestCanceledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c := &collector{}
	res := newTestRunner(Options{}).Run(ctx, &desksidev1.RunCommand{Command: "echo should not run"}, c.emit)
	if !res.GetCanceled() || res.GetExitCode() != -1 || len(c.all()) != 0 {
		t.Errorf("exit = %v, chunks %d", res, len(c.all()))
	}
}

func TestOutputCap(t *testing.T) {
	const limit = 1 << 20
	r := newTestRunner(Options{})
	c := &collector{}
	res := await(t, runAsync(t.Context(), r, &desksidev1.RunCommand{Command: "yes | head -c 50000000", MaxOutputBytes: limit}, c), 60*time.Second)
	if !res.GetTruncated() || res.GetExitCode() != 0 || res.GetError() != "" {
		t.Fatalf("exit = %v", res)
	}
	if res.GetOutputBytes() != 50000000 {
		t.Errorf("output_bytes = %d, want 50000000", res.GetOutputBytes())
	}
	chunks := c.all()
	checkSeq(t, chunks)
	stdout := c.text(out)
	if len(stdout) != limit || strings.Trim(stdout, "y\n") != "" {
		t.Errorf("stdout: %d bytes, want %d of y lines", len(stdout), limit)
	}
	last := chunks[len(chunks)-1]
	marker := fmt.Sprintf("\n[deskside: output truncated at %d bytes; the command kept running until it ended]\n", limit)
	if last.GetStream() != errS || string(last.GetData()) != marker {
		t.Errorf("last chunk = %v %q, want the marker on stderr", last.GetStream(), last.GetData())
	}
}

func TestOutputCapDefault(t *testing.T) {
	r := newTestRunner(Options{DefaultMaxOutput: 10})
	c := &collector{}
	res := r.Run(t.Context(), &desksidev1.RunCommand{Command: "echo 0123456789abcdef; sleep 0.1; echo more >&2"}, c.emit)
	if !res.GetTruncated() || res.GetOutputBytes() != 22 {
		t.Errorf("exit = %v", res)
	}
	if got := c.text(out); got != "0123456789" {
		t.Errorf("stdout = %q", got)
	}
	if got := c.text(errS); !strings.Contains(got, "truncated at 10 bytes") || strings.Contains(got, "more") {
		t.Errorf("stderr = %q", got)
	}
}

func TestEmitErrorCancels(t *testing.T) {
	r := newTestRunner(Options{FlushInterval: 5 * time.Millisecond})
	c := &collector{failAt: 3}
	res := await(t, runAsync(t.Context(), r, &desksidev1.RunCommand{Command: "while :; do echo x; sleep 0.01; done"}, c), 10*time.Second)
	if !res.GetCanceled() || res.GetExitCode() != -1 || !strings.Contains(res.GetError(), "could not be delivered: console went away") {
		t.Errorf("exit = %v", res)
	}
	c.mu.Lock()
	calls := c.calls
	c.mu.Unlock()
	if calls != 3 {
		t.Errorf("emit called %d times, want 3 (none after the failure)", calls)
	}
}

func TestScriptDirectoryRemoved(t *testing.T) {
	c := &collector{}
	res := newTestRunner(Options{}).Run(t.Context(), &desksidev1.RunCommand{Script: "#!/bin/sh\necho \"$0\"\nls -ld \"$(dirname \"$0\")\"\n"}, c.emit)
	if res.GetExitCode() != 0 {
		t.Fatalf("exit = %v", res)
	}
	lines := strings.Split(c.text(out), "\n")
	path := lines[0]
	if !strings.HasPrefix(lines[1], "drwx------") {
		t.Errorf("script directory mode: %q", lines[1])
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("script directory %s still there: %v", filepath.Dir(path), err)
	}
}

func TestRunAs(t *testing.T) {
	testkit.NeedOK(t, "root", os.Geteuid() == 0, "running as another user needs the tests to run as root",
		"run the tests as root (sudo -E go test ./agent/command), as CI does")
	nobody, err := user.Lookup("nobody")
	testkit.Need(t, "the user nobody", err, "create it (Debian: it comes with the base-passwd package)")
	tests := []struct {
		name string
		req  *desksidev1.RunCommand
		want string
	}{
		{"command", &desksidev1.RunCommand{Command: "id -u; id -g", RunAs: "nobody"}, nobody.Uid + "\n" + nobody.Gid + "\n"},
		{"numeric uid", &desksidev1.RunCommand{Command: "id -u", RunAs: nobody.Uid}, nobody.Uid + "\n"},
		{"script", &desksidev1.RunCommand{Script: "#!/bin/sh\nid -u\n", RunAs: "nobody"}, nobody.Uid + "\n"},
		{"root by name", &desksidev1.RunCommand{Command: "id -u", RunAs: "root"}, "0\n"},
	}
	r := newTestRunner(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &collector{}
			res := r.Run(t.Context(), tt.req, c.emit)
			if res.GetExitCode() != 0 || res.GetError() != "" {
				t.Fatalf("exit = %v, stderr %q", res, c.text(errS))
			}
			if got := c.text(out); got != tt.want {
				t.Errorf("stdout = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRunAsNeedsRoot(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	uid, _ := strconv.Atoi(me.Uid)
	// Pretend the agent runs as an unprivileged uid that is nobody's.
	defer func(f func() int) { geteuid = f }(geteuid)
	geteuid = func() int { return 54321 }
	if uid == 54321 {
		t.Skip("the test's uid is the pretend one")
	}
	res := newTestRunner(Options{}).Run(t.Context(), &desksidev1.RunCommand{Command: "true", RunAs: me.Username}, (&collector{}).emit)
	if !strings.Contains(res.GetError(), "running as another user needs the agent to run as root") || res.GetExitCode() != -1 {
		t.Errorf("exit = %v", res)
	}
}

func TestParseShebang(t *testing.T) {
	tests := []struct {
		name, script, interp, arg string
		wantErr                   bool
	}{
		{"none", "echo hi\n", "/bin/sh", "", false},
		{"sh", "#!/bin/sh\necho", "/bin/sh", "", false},
		{"space after #!", "#! /bin/bash -e\n", "/bin/bash", "-e", false},
		{"env with argument", "#!/usr/bin/env python3\n", "/usr/bin/env", "python3", false},
		{"one argument, as Linux", "#!/usr/bin/env -S a b\n", "/usr/bin/env", "-S a b", false},
		{"CRLF", "#!/bin/sh\r\n", "/bin/sh", "", false},
		{"tab separated", "#!/bin/sh\t-x\n", "/bin/sh", "-x", false},
		{"no newline", "#!/bin/sh", "/bin/sh", "", false},
		{"empty", "#!\n", "", "", true},
		{"relative", "#!python\n", "", "", true},
		{"too long", "#!/" + strings.Repeat("a", maxShebang), "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			interp, arg, err := parseShebang(tt.script)
			if (err != nil) != tt.wantErr || interp != tt.interp || arg != tt.arg {
				t.Errorf("parseShebang = %q %q %v, want %q %q err %v", interp, arg, err, tt.interp, tt.arg, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadRequest) {
				t.Errorf("error %v is not ErrBadRequest", err)
			}
		})
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	testkit.CheckGoroutines(t)
	r := newTestRunner(Options{KillGrace: 100 * time.Millisecond})
	reqs := []*desksidev1.RunCommand{
		{Command: "echo hi; echo there >&2"},
		{Command: "sleep 60", Timeout: durationpb.New(100 * time.Millisecond)},
		{Command: "yes | head -c 100000", MaxOutputBytes: 1000},
		{Command: "(sleep 60 &); echo left a child"},
		{Script: "#!/bin/sh\nexit 2\n"},
		{},
	}
	for _, req := range reqs {
		r.Run(t.Context(), req, (&collector{}).emit)
	}
	ctx, cancel := context.WithCancel(t.Context())
	c := &collector{}
	done := runAsync(ctx, r, &desksidev1.RunCommand{Command: "echo started; sleep 60"}, c)
	proctabtest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if c.text(out) == "" {
			return errors.New("no output yet")
		}
		return nil
	})
	cancel()
	await(t, done, 10*time.Second)
}

func BenchmarkRunEcho(b *testing.B) {
	r := newTestRunner(Options{})
	req := &desksidev1.RunCommand{Command: "echo hi"}
	for b.Loop() {
		var got bytes.Buffer
		res := r.Run(b.Context(), req, func(m *desksidev1.CommandOutput) error { got.Write(m.GetData()); return nil })
		if res.GetExitCode() != 0 || got.String() != "hi\n" {
			b.Fatalf("exit = %v, output %q", res, got.String())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}
