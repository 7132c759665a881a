package update_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/agent/update"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/updates"
)

// syncBuf collects a process's output.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func build(t *testing.T, out, pkg string, ldflags ...string) {
	t.Helper()
	args := []string{"build", "-trimpath", "-o", out}
	if len(ldflags) > 0 {
		args = append(args, "-ldflags", strings.Join(ldflags, " "))
	}
	if b, err := exec.Command("go", append(args, pkg)...).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

func agentBuild(t *testing.T, dir, version string, extra ...string) string {
	out := filepath.Join(dir, "deskside-agent-"+version)
	build(t, out, "github.com/deskside/deskside/agent/cmd/deskside-agent", append([]string{"-X main.version=" + version}, extra...)...)
	return out
}

func run(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	b, err := exec.Command(bin, args...).CombinedOutput()
	return string(b), err
}

func must(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := run(t, bin, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return out
}

func fingerprint(t *testing.T, keygenOut string) string {
	t.Helper()
	for _, l := range strings.Split(keygenOut, "\n") {
		if fp, ok := strings.CutPrefix(l, "Fingerprint: "); ok {
			return strings.Fields(fp)[0]
		}
	}
	t.Fatalf("no fingerprint in %q", keygenOut)
	return ""
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// agentProc is the agent run as a process, with the test in the role of
// the service manager.
type agentProc struct {
	cmd *exec.Cmd
	out *syncBuf
	// exited is closed once the process exited and its one Wait returned
	// (two Waits on one Cmd can leave one blocked for ever).
	exited chan struct{}
}

func start(t *testing.T, exe, state string) *agentProc {
	t.Helper()
	p := &agentProc{out: &syncBuf{}}
	p.cmd = exec.Command(exe, "run", "--state", state, "--log-format", "text", "--health-interval", "1s")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *agentProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
}

func version(t *testing.T, exe string) string {
	return strings.TrimSpace(strings.TrimPrefix(must(t, exe, "version"), "deskside-agent "))
}

// TestAutoUpdateEndToEnd builds real agents N, N+1, N+2 and a broken
// N+3 that exits at start, runs them as processes against a real relay,
// and updates through `deskside-agent update apply` with manifests the
// real `deskside release` CLI signed.
func TestAutoUpdateEndToEnd(t *testing.T) {
	testkit.Heavy(t, "builds four agents and the CLI, runs them against a relay")
	bins := t.TempDir()
	n := agentBuild(t, bins, "v1.0.0")
	n1 := agentBuild(t, bins, "v1.1.0")
	n2 := agentBuild(t, bins, "v1.2.0")
	old := agentBuild(t, bins, "v0.9.0")
	broken := agentBuild(t, bins, "v1.3.0", "-X github.com/deskside/deskside/agent/cli.exitAtStart=1")
	cli := filepath.Join(bins, "deskside")
	build(t, cli, "github.com/deskside/deskside/console/cmd/deskside")

	keys := t.TempDir()
	relKey, orgKey, relayKey := filepath.Join(keys, "release.pem"), filepath.Join(keys, "org.pem"), filepath.Join(keys, "relay-made.pem")
	relFP := fingerprint(t, must(t, cli, "release", "keygen", relKey))
	orgFP := fingerprint(t, must(t, cli, "org", "init", orgKey))
	must(t, cli, "release", "keygen", relayKey) // a key the relay made: what a relay that pushes code would sign with
	sign := func(key, bin, v string) string {
		out := bin + "." + filepath.Base(key) + ".release"
		must(t, cli, "release", "sign", "--key", key, "--version", v, "--os", "linux", "--arch", "amd64", "-o", out, bin)
		return out
	}

	r := servertest.Start(t, servertest.Options{})
	st := r.Enroll(t, "updatehost")
	exe := filepath.Join(t.TempDir(), "deskside-agent")
	copyFile(t, n, exe)
	state := st.Dir
	must(t, exe, "org", "pin", orgFP, "--state", state)

	a := start(t, exe, state)
	servertest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if !strings.Contains(a.out.String(), "connected to relay") {
			return fmt.Errorf("agent N not connected:\n%s", a.out)
		}
		return nil
	})

	apply := func(manifest, bin string, extra ...string) (string, error) {
		return run(t, exe, append([]string{"update", "apply", "--state", state, "--manifest", manifest, "--binary", bin}, extra...)...)
	}
	good := sign(relKey, n1, "v1.1.0")
	t.Run("refused", func(t *testing.T) {
		if out, err := apply(good, n1); err == nil || !strings.Contains(out, "auto-update is off: pin a release key") {
			t.Fatalf("no pin: %v %s", err, out)
		}
		if out, err := run(t, exe, "update", "pin", orgFP, "--state", state); err == nil || !strings.Contains(out, "must differ") {
			t.Fatalf("pinning the organisation key as release key: %v %s", err, out)
		}
		must(t, exe, "update", "pin", relFP, "--state", state)

		badSig := filepath.Join(t.TempDir(), "bad.release")
		b, _ := os.ReadFile(good)
		b[len(b)-1] ^= 1 // the signature is the last field
		os.WriteFile(badSig, b, 0o644)
		wrongBin := filepath.Join(t.TempDir(), "wrong")
		copyFile(t, n2, wrongBin)
		// A build that dies before main: the start counter in `run` never
		// sees it, so the running version must refuse it before the swap.
		src := filepath.Join(t.TempDir(), "main.go")
		os.WriteFile(src, []byte("package main\n\nfunc init() { panic(\"broken in init\") }\n\nfunc main() {}\n"), 0o644)
		diesInInit := filepath.Join(bins, "dies-in-init")
		build(t, diesInInit, src)
		for name, c := range map[string]struct{ manifest, bin, want string }{
			"bad signature":   {badSig, n1, "signature does not verify"},
			"downgrade":       {sign(relKey, old, "v0.9.0"), old, "not newer"},
			"same version":    {sign(relKey, n, "v1.0.0"), n, "not newer"},
			"organisation":    {sign(orgKey, n1, "v1.1.0"), n1, "not signed by the pinned release key"},
			"relay's own key": {sign(relayKey, n1, "v1.1.0"), n1, "not signed by the pinned release key"},
			"other bytes":     {good, wrongBin, "does not match the signed manifest"},
			"dies in init":    {sign(relKey, diesInInit, "v1.1.0"), diesInInit, `does not start on this machine: ` + "`version`" + ` failed (exit status 2): "panic: broken in init"`},
			"another version": {sign(relKey, n2, "v1.1.0"), n2, `printed "deskside-agent v1.2.0", the release signs v1.1.0`},
		} {
			out, err := apply(c.manifest, c.bin)
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("%s: want refusal %q, got %v %s", name, c.want, err, out)
			}
			if v := version(t, exe); v != "v1.0.0" {
				t.Fatalf("%s: executable is now %s", name, v)
			}
			for _, left := range []string{exe + ".next", filepath.Join(state, update.PendingFile)} {
				if _, err := os.Stat(left); !os.IsNotExist(err) {
					t.Fatalf("%s: %s left behind (%v)", name, left, err)
				}
			}
		}
	})

	t.Run("update over the link keeps the identity", func(t *testing.T) {
		// The relay offers N+1 to every device; the running agent N
		// downloads it over its stream, swaps and re-executes itself.
		ctx := context.Background()
		rel := &desksidev1.SignedRelease{}
		b, _ := os.ReadFile(good)
		exeBytes, _ := os.ReadFile(n1)
		if err := proto.Unmarshal(b, rel); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Srv.Updates().Upload(ctx, rel, exeBytes); err != nil {
			t.Fatal(err)
		}
		if err := r.Srv.StartRollout(ctx, updates.Rollout{Version: "v1.1.0", OS: "linux", Arch: "amd64", Percent: 100}); err != nil {
			t.Fatal(err)
		}
		servertest.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
			if o := update.Last(state); o == nil || o.State != "installed" || o.Version != "v1.1.0" {
				return fmt.Errorf("not confirmed: %+v\n%s", o, a.out)
			}
			return nil
		})
		if v, pv := version(t, exe), version(t, exe+update.PreviousExt); v != "v1.1.0" || pv != "v1.0.0" {
			t.Fatalf("after the update: %s, previous %s", v, pv)
		}
		if !strings.Contains(a.out.String(), "update confirmed") || strings.Count(a.out.String(), "device="+st.DeviceID) < 2 {
			t.Fatalf("N+1 did not connect as device %s:\n%s", st.DeviceID, a.out)
		}
		servertest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
			if s, _, _ := r.Srv.Updates().State(ctx, st.DeviceID); s.State != desksidev1.UpdateState_UPDATE_STATE_INSTALLED {
				return fmt.Errorf("relay's state of the device: %+v", s)
			}
			return nil
		})
		if _, err := os.Stat(filepath.Join(state, update.PendingFile)); !os.IsNotExist(err) {
			t.Fatalf("pending marker left: %v", err)
		}
	})

	t.Run("exits at start: rolled back", func(t *testing.T) {
		must(t, exe, "update", "apply", "--state", state, "--manifest", sign(relKey, broken, "v1.3.0"), "--binary", broken)
		a.stop()
		// The service manager restarts the agent each time it exits.
		starts := 0
	restart:
		for ; starts < 10; starts++ {
			a = start(t, exe, state)
			select {
			case <-a.exited:
			case <-time.After(3 * time.Second):
				break restart // stays up: the previous version runs
			}
		}
		if starts != update.DefaultMaxAttempts {
			t.Errorf("the broken build exited %d times before the rollback; want %d", starts, update.DefaultMaxAttempts)
		}
		servertest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
			if o := update.Last(state); o == nil || o.State != "rolled back" || o.Version != "v1.3.0" {
				return fmt.Errorf("not rolled back: %+v\n%s", o, a.out)
			}
			if !strings.Contains(a.out.String(), "connected to relay") {
				return fmt.Errorf("previous version not connected:\n%s", a.out)
			}
			return nil
		})
		if v := version(t, exe); v != "v1.1.0" {
			t.Fatalf("after rollback the executable is %s", v)
		}
	})

	t.Run("no connection before the deadline: rolled back", func(t *testing.T) {
		must(t, exe, "update", "apply", "--state", state, "--manifest", sign(relKey, n2, "v1.2.0"), "--binary", n2, "--confirm-within", "3s")
		a.stop()
		r.Stop() // the new version cannot reach its relay
		a = start(t, exe, state)
		servertest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
			if o := update.Last(state); o == nil || o.State != "rolled back" || o.Version != "v1.2.0" || !strings.Contains(o.Reason, "did not reach the relay") {
				return fmt.Errorf("not rolled back: %+v\n%s", o, a.out)
			}
			return nil
		})
		if v := version(t, exe); v != "v1.1.0" {
			t.Fatalf("after rollback the executable is %s", v)
		}
	})
}
