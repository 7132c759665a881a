package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ownedRelay is a deskside-relay process the simulator started, and so
// may restart or kill.
type ownedRelay struct {
	name string
	bin  string
	args []string
	env  []string
	dir  string
	addr string
	log  *os.File

	cmd  *exec.Cmd
	done chan struct{}
}

// relayFiles are what a second relay copies from the first, as an
// operator does for a scaled-out pair: the CA and the audit key (the
// relay's own names for them).
var relayFiles = []string{"ca.pem", "ca-key.pem", "audit.key"}

// freePort returns a loopback address with a port free at the moment.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// newOwnedRelay prepares relay name in dir; extra are further relay flags.
func newOwnedRelay(name, bin, dir, password string, backend []string, extra []string) (*ownedRelay, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	lg, err := os.OpenFile(filepath.Join(dir, "relay.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	// --config= : a packaged relay's /etc/deskside/relay.yaml is not this one's.
	args := []string{"--config=", "--data", dir, "--listen", addr, "--admin-listen", "off", "--web-listen", "off",
		"--turn-listen", "off", "--log-format", "text"}
	args = append(append(args, backend...), extra...)
	return &ownedRelay{name: name, bin: bin, args: args, dir: dir, addr: addr, log: lg,
		env: append(os.Environ(), "DESKSIDE_ADMIN_PASSWORD="+password)}, nil
}

// start starts the process and waits until it accepts connections.
func (r *ownedRelay) start(ctx context.Context) error {
	cmd := exec.Command(r.bin, r.args...)
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = r.log, r.log
	fmt.Fprintf(r.log, "=== fleetsim: starting %s at %s\n", r.name, time.Now().UTC().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start relay %s: %w (build it with `make build`, or name it with --relay-bin)", r.name, err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		close(r.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		// From the console's address: a blackhole in the kernel lets it by.
		d := &net.Dialer{Timeout: time.Second}
		if la := consoleLocalAddr(r.addr); la != nil {
			d.LocalAddr = la
		}
		c, err := d.Dial("tcp", r.addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-r.done:
			return fmt.Errorf("relay %s exited at start (%v); its log: %s\n%s", r.name, cmd.ProcessState, r.log.Name(), tail(r.log.Name()))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("relay %s did not listen on %s within 60s; its log: %s", r.name, r.addr, r.log.Name())
		}
	}
}

// running reports whether the process is alive.
func (r *ownedRelay) running() bool {
	if r.cmd == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits, killing it after grace.
func (r *ownedRelay) stop(grace time.Duration) error {
	if !r.running() {
		return nil
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
		return nil
	case <-time.After(grace):
		r.cmd.Process.Kill()
		<-r.done
		return fmt.Errorf("relay %s did not stop within %s of SIGTERM; killed", r.name, grace)
	}
}

// kill sends SIGKILL and waits.
func (r *ownedRelay) kill() {
	if !r.running() {
		return
	}
	r.cmd.Process.Kill()
	<-r.done
}

// pid is the running process's id, or 0.
func (r *ownedRelay) pid() int {
	if !r.running() {
		return 0
	}
	return r.cmd.Process.Pid
}

// copyIdentity copies the CA and audit key of from into r's directory.
func (r *ownedRelay) copyIdentity(from *ownedRelay) error {
	for _, f := range relayFiles {
		b, err := os.ReadFile(filepath.Join(from.dir, f))
		if errors.Is(err, os.ErrNotExist) && f == "audit.key" {
			continue // an older relay without an audit key file
		}
		if err != nil {
			return fmt.Errorf("copy %s from relay %s: %w", f, from.name, err)
		}
		if err := os.WriteFile(filepath.Join(r.dir, f), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// tail is the end of a log file, for error messages.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, _ := f.Stat()
	if fi != nil && fi.Size() > 2000 {
		f.Seek(-2000, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}
