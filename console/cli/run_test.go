//go:build unix

package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deskside/deskside/console/cli"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// syncBuffer is a bytes.Buffer safe for a writer and a poller.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCtx runs the CLI with ctx and the given standard output.
func (c *cliEnv) runCtx(ctx context.Context, stdout, stderr io.Writer, args ...string) int {
	env := func(k string) string {
		if k == "DESKSIDE_CONFIG" {
			return c.cfg
		}
		return c.env[k]
	}
	return cli.Main(ctx, args, strings.NewReader(""), stdout, stderr, env)
}

func TestRun(t *testing.T) {
	f := startFleet(t)
	dev := f.agent(t, "run-host")
	c := f.admin(t)

	t.Run("hello", func(t *testing.T) {
		res := c.must("run", dev, "--", "echo", "hello")
		if res.stdout != "hello\n" || res.stderr != "" {
			t.Errorf("run echo hello: %s", res)
		}
	})
	t.Run("quoting", func(t *testing.T) {
		res := c.must("run", dev, "--", "echo", "a  b")
		if res.stdout != "a  b\n" {
			t.Errorf("arguments with spaces: %q", res.stdout)
		}
		res = c.must("run", dev, "--", "printf", `%s|`, "it's", "$HOME", "*", "", "~")
		if res.stdout != "it's|$HOME|*||~|" {
			t.Errorf("quoted arguments: %q", res.stdout)
		}
		// A single argument is a command line of its own.
		res = c.must("run", dev, "--", "echo one two | tr a-z A-Z")
		if res.stdout != "ONE TWO\n" {
			t.Errorf("single argument: %q", res.stdout)
		}
	})
	t.Run("exit code", func(t *testing.T) {
		res := c.run("run", dev, "--", "sh", "-c", "exit 3")
		if res.code != 3 {
			t.Errorf("exit 3: %s", res)
		}
	})
	t.Run("stderr separated", func(t *testing.T) {
		res := c.run("run", dev, "--", "echo out; echo err >&2; echo out2; exit 1")
		if res.code != 1 || res.stdout != "out\nout2\n" || res.stderr != "err\n" {
			t.Errorf("streams: %s", res)
		}
	})
	t.Run("script", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "s.sh")
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho \"from script $((1+2))\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		res := c.must("run", dev, "--script", p)
		if res.stdout != "from script 3\n" {
			t.Errorf("--script: %s", res)
		}
		c.stdin = "echo from stdin\n"
		if res := c.must("run", dev, "--script", "-"); res.stdout != "from stdin\n" {
			t.Errorf("--script -: %s", res)
		}
		c.fails(2, "not both", "run", dev, "--script", p, "--", "echo")
	})
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		c.fails(124, "timed out after 1s", "run", dev, "--timeout", "1s", "--", "sleep", "60")
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("timeout took %s", d)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		res := c.run("run", dev, "--max-output", "1KiB", "--", "head -c 100000 /dev/zero | tr '\\0' x")
		if res.code != 0 || !strings.Contains(res.stderr, "output truncated") || strings.Count(res.stdout, "x") > 1024 || !strings.Contains(res.stdout, "xxx") {
			t.Errorf("truncated: exit %d, %d bytes of stdout, stderr %q", res.code, len(res.stdout), res.stderr)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var stdout, stderr syncBuffer
		done := make(chan int, 1)
		go func() { done <- c.runCtx(ctx, &stdout, &stderr, "run", dev, "--", "echo $$; exec sleep 300") }()
		var pid int
		servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			n, err := strconv.Atoi(strings.TrimSpace(stdout.String()))
			if err != nil {
				return fmt.Errorf("no pid printed yet: %q", stdout.String())
			}
			pid = n
			return nil
		})
		cancel()
		select {
		case code := <-done:
			if code != 130 || strings.TrimSpace(stderr.String()) != "cancelled" {
				t.Errorf("cancelled run: exit %d, stderr %q", code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("run did not return after its context was cancelled")
		}
		// The relay told the agent, which ended the remote process.
		servertest.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
			if err := syscall.Kill(pid, 0); err == nil {
				return fmt.Errorf("process %d still runs", pid)
			}
			return nil
		})
	})
	t.Run("usage", func(t *testing.T) {
		c.fails(2, `put the command after "--"`, "run", dev, "echo", "hi")
		c.fails(2, `a command is required after "--"`, "run", dev)
		c.fails(2, "a device ID (or --filter) is required", "run", "--", "echo")
		c.fails(2, "not both", "run", dev, "--filter", "os=linux", "--", "echo")
		c.fails(2, "cannot select devices by group", "run", "--filter", "group=lab", "--", "true")
		c.fails(2, "unknown key", "run", "--filter", "colour=blue", "--", "true")
		c.fails(2, "--max-output", "run", dev, "--max-output", "1GiB", "--", "true")
		c.fails(2, "--queue-ttl goes with --queue-offline", "run", dev, "--queue-ttl", "1h", "--", "true")
		c.fails(1, "no device", "run", "dev-nope", "--", "true")
	})
	t.Run("tier1 refused", func(t *testing.T) {
		t1 := f.tech(t, "tier1", desksidev1.Role_ROLE_TIER1)
		res := t1.fails(1, "permission denied: RunCommand needs role tier2; you are tier1", "run", dev, "--", "echo", "hi")
		if res.stdout != "" {
			t.Errorf("refused run printed %q", res.stdout)
		}
		t1.fails(1, "permission denied: RunAction needs role tier2; you are tier1", "action", dev, "flush-dns")
		t2 := f.tech(t, "tier2", desksidev1.Role_ROLE_TIER2)
		t2.must("run", dev, "--", "true")
	})
	r := f.relay
	r.noSecret(t, c.token())
}

func TestRunFanout(t *testing.T) {
	f := startFleet(t)
	ids := map[string]string{}
	for _, h := range []string{"fan-a", "fan-b", "fan-c", "bystander"} {
		ids[h] = f.agent(t, h)
	}
	// Enrolled, never connected: offline.
	ids["fan-z"] = f.st.Enroll(t, "fan-z").DeviceID
	c := f.admin(t)

	t.Run("prefixed lines and table", func(t *testing.T) {
		// Partial lines and many lines per device: no line is cut or mixed.
		res := c.must("run", "--filter", "hostname=fan-", "--filter", "online", "--",
			`printf 'par'; sleep 0.2; printf 'tial\n'; for i in $(seq 1 200); do echo "line $i of a longer output"; done; echo oops >&2`)
		noEscapes(t, "fan-out", res)
		body, tableText, ok := strings.Cut(res.stdout, "\n\n")
		if !ok {
			t.Fatalf("no table after the output: %s", res)
		}
		counts := map[string]int{}
		lineRE := regexp.MustCompile(`^(fan-[abc]): (partial|line \d+ of a longer output)$`)
		for _, l := range strings.Split(body, "\n") {
			m := lineRE.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("unexpected output line %q", l)
			}
			counts[m[1]]++
		}
		for _, h := range []string{"fan-a", "fan-b", "fan-c"} {
			if counts[h] != 201 {
				t.Errorf("%s: %d lines, want 201", h, counts[h])
			}
		}
		if strings.Contains(res.stdout, "bystander") || strings.Contains(res.stdout, "fan-z") {
			t.Errorf("devices outside the filter ran the command: %s", res.stdout)
		}
		for _, h := range []string{"fan-a", "fan-b", "fan-c"} {
			if !strings.Contains(res.stderr, h+": oops\n") {
				t.Errorf("stderr lacks %s's line: %q", h, res.stderr)
			}
		}
		for _, want := range []string{"HOSTNAME", "DEVICE", "RESULT", "OUTPUT", ids["fan-a"], ids["fan-b"], ids["fan-c"]} {
			if !strings.Contains(tableText, want) {
				t.Errorf("table lacks %q:\n%s", want, tableText)
			}
		}
		if strings.Count(tableText, "  ok  ") != 3 {
			t.Errorf("want 3 ok results:\n%s", tableText)
		}
		if l := lastLine(res.stdout); l != "3 devices: 3 succeeded" {
			t.Errorf("summary %q", l)
		}
	})

	t.Run("failures", func(t *testing.T) {
		res := c.run("run", "--filter", "hostname=fan-", "--filter", "online=true", "--", "exit 2")
		if res.code != 1 || strings.Count(res.stdout, "exit 2") != 3 || lastLine(res.stdout) != "3 devices: 0 succeeded, 3 failed" {
			t.Errorf("fan-out failures: %s", res)
		}
	})

	t.Run("offline and queued", func(t *testing.T) {
		res := c.run("run", "--filter", "hostname=fan-z", "--", "echo", "hi")
		if res.code != 1 || !regexp.MustCompile(`fan-z\s+dev-\S+\s+offline\s+-`).MatchString(res.stdout) || lastLine(res.stdout) != "1 device: 0 succeeded, 1 offline" {
			t.Errorf("offline: %s", res)
		}
		res = c.run("run", "--filter", "hostname=fan-", "--queue-offline", "--queue-ttl", "2h", "--", "echo", "hi")
		if res.code != 1 || !regexp.MustCompile(`fan-z\s+dev-\S+\s+queued`).MatchString(res.stdout) ||
			!strings.Contains(res.stdout, "Queued commands run when their device reconnects") ||
			lastLine(res.stdout) != "4 devices: 3 succeeded, 1 queued" {
			t.Errorf("queued: %s", res)
		}
		for _, h := range []string{"fan-a", "fan-b", "fan-c"} {
			if !strings.Contains(res.stdout, h+": hi\n") {
				t.Errorf("no output from %s: %s", h, res.stdout)
			}
		}
		// One device, offline.
		c.fails(1, "is offline: the command did not run", "run", ids["fan-z"], "--", "echo", "hi")
		c.fails(1, "is offline: the command is queued", "run", ids["fan-z"], "--queue-offline", "--", "echo", "hi")
		c.fails(1, "no device matches the filter", "run", "--filter", "hostname=nothing-like-this", "--", "true")
	})
}

func TestRunFanoutCancel(t *testing.T) {
	f := startFleet(t)
	for _, h := range []string{"can-a", "can-b", "can-c"} {
		f.agent(t, h)
	}
	c := f.admin(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- c.runCtx(ctx, &stdout, &stderr, "run", "--filter", "hostname=can-", "--", "echo $$; exec sleep 300")
	}()
	var pids []int
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		pids = nil
		for _, m := range regexp.MustCompile(`(?m)^can-[abc]: (\d+)$`).FindAllStringSubmatch(stdout.String(), -1) {
			pid, _ := strconv.Atoi(m[1])
			pids = append(pids, pid)
		}
		if len(pids) != 3 {
			return fmt.Errorf("%d devices started", len(pids))
		}
		return nil
	})
	cancel()
	select {
	case code := <-done:
		out := stdout.String()
		if code != 130 || strings.TrimSpace(stderr.String()) != "cancelled" || strings.Count(out, "  cancelled  ") != 3 ||
			lastLine(out) != "3 devices: 0 succeeded, 3 cancelled" {
			t.Errorf("cancelled fan-out: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fan-out did not return after its context was cancelled")
	}
	// Each agent ended its command.
	servertest.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil {
				return fmt.Errorf("process %d still runs", pid)
			}
		}
		return nil
	})
	c.must("run", "--filter", "hostname=can-", "--", "true")
}

func TestAction(t *testing.T) {
	f := startFleet(t)
	dev := f.agent(t, "action-host")
	c := f.admin(t)

	victim := exec.Command("sleep", "300")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- victim.Wait() }() // reap it as soon as it ends
	t.Cleanup(func() { victim.Process.Kill() })

	pid := strconv.Itoa(victim.Process.Pid)
	res := c.must("action", dev, "kill", pid)
	if !strings.Contains(res.stdout, dev+": process "+pid) {
		t.Errorf("kill: %s", res)
	}
	select {
	case err := <-exited:
		if err == nil {
			t.Error("sleep exited normally, not killed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sleep 300 still runs after the kill action")
	}

	// Not ok: exit 1 with the agent's reason.
	c.fails(1, "kill process 999999999 failed: ", "action", dev, "kill", "999999999")
	c.fails(2, "not a process ID", "action", dev, "kill", "1")
	c.fails(2, "restart needs a service name", "action", dev, "restart")
	c.fails(2, "--delay and --message only go with reboot", "action", dev, "flush-dns", "--delay", "5m")
	c.fails(2, "--delay must be between", "action", dev, "reboot", "--delay", "10s")
	c.fails(2, `unknown action "explode"`, "action", dev, "explode")
}
