package xvfb

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deskside/deskside/internal/testkit"
)

const (
	// FirstDisplay is the first display number Start tries.
	FirstDisplay = 90
	// maxAttempts bounds the display numbers Start tries.
	maxAttempts = 100
	// displayRange is how many display numbers from FirstDisplay are used.
	displayRange = 400
	// readyTimeout is how long a server may take to accept connections.
	readyTimeout = 30 * time.Second
	// stopTimeout is how long a server may take to exit after SIGTERM.
	stopTimeout = 10 * time.Second
)

// Config describes the server to start; zero fields take the defaults
// (1920×1080, depth 24).
type Config struct {
	Width, Height, Depth int
	// Args are extra arguments, such as "-extension", "MIT-SHM" to start a
	// server without that extension.
	Args []string
}

// Server is a running Xvfb.
type Server struct {
	// Display is the display string, ":N".
	Display string
	// Number is N.
	Number int

	cmd    *exec.Cmd
	stderr *lockedBuffer
	once   sync.Once
	claim  *os.File // this process's hold on the display number (claim)
}

// Start starts a 1920×1080×24 Xvfb for t and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Config{})
}

// StartWith starts an Xvfb as cfg describes for t and stops it when t
// ends. It skips t under -short, and when Xvfb is missing unless under CI
// (testkit.Heavy, testkit.Need).
func StartWith(t testing.TB, cfg Config) *Server {
	t.Helper()
	testkit.Heavy(t, "starts Xvfb")
	path, err := exec.LookPath("Xvfb")
	testkit.Need(t, "Xvfb", err, "install the Debian package xvfb (make deps)")
	s, err := start(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		switch err := s.Stop(); {
		case errors.Is(err, errIgnoredTerm):
			// The test is over and the server is gone (killed): a slow
			// exit on a loaded machine is Xvfb's, not the test's, failure.
			t.Logf("stop Xvfb %s: %v; its last output: %s", s.Display, err, s.Stderr())
		case err != nil:
			t.Errorf("stop Xvfb %s: %v", s.Display, err)
		}
	})
	return s
}

func start(path string, cfg Config) (*Server, error) {
	screen := fmt.Sprintf("%dx%dx%d", cmp.Or(cfg.Width, 1920), cmp.Or(cfg.Height, 1080), cmp.Or(cfg.Depth, 24))
	var lastErr error
	// Test packages run in parallel processes that all start servers:
	// each process starts at its own place in a range of displayRange
	// numbers, so that two rarely race for the same display (a CI flake:
	// a server on :90 reset its first connection).
	first := (os.Getpid() % (displayRange / 10)) * 10
	for i := range maxAttempts {
		n := FirstDisplay + (first+i)%displayRange
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue // taken, or left behind by a crashed server
		}
		hold, ok := claim(n)
		if !ok {
			continue // another test process is starting a server on n
		}
		s, err := tryStart(path, n, screen, cfg.Args)
		if err == nil {
			s.claim = hold
			return s, nil
		}
		hold.Close()
		lastErr = err
	}
	return nil, fmt.Errorf("no Xvfb display could be started in :%d..:%d: %w", FirstDisplay, FirstDisplay+displayRange-1, lastErr)
}

// claim takes display number n for this process: an exclusive flock on
// /tmp/deskside-xvfb-N.lock, held while its server runs (closed by Stop).
// Xvfb's own lock file is not enough: two test processes that both find
// display N free start a server each, and the one that then loses the X
// lock has already replaced the winner's socket in /tmp/.X11-unix, so
// the winner runs on but cannot be reached by its path (a CI flake:
// "dial unix /tmp/.X11-unix/X190: no such file or directory").
func claim(n int) (*os.File, bool) {
	f, err := os.OpenFile(fmt.Sprintf("/tmp/deskside-xvfb-%d.lock", n), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// tryStart starts Xvfb on display n and waits until it writes its display
// number to the -displayfd pipe, which it does once it accepts
// connections. A server that exits first (display taken) is an error.
func tryStart(path string, n int, screen string, extra []string) (*Server, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	authFile, err := acquireAuth(n)
	if err != nil {
		return nil, err
	}
	// -noreset: by default the server resets when its last client leaves,
	// and a connection made during the reset is dropped (a test that
	// closes its connection and dials again flaked in CI).
	args := append([]string{":" + strconv.Itoa(n), "-screen", "0", screen, "-nolisten", "tcp", "-noreset", "-displayfd", "3", "-auth", authFile}, extra...)
	s := &Server{stderr: &lockedBuffer{}}
	defer func() {
		if s.Display == "" {
			releaseAuth()
		}
	}()
	s.cmd = exec.Command(path, args...)
	s.cmd.ExtraFiles = []*os.File{w} // fd 3 in the child
	s.cmd.Stderr = s.stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = s.cmd.Start()
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	if err := r.SetReadDeadline(time.Now().Add(readyTimeout)); err != nil {
		s.kill()
		return nil, err
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		s.kill()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("xvfb: server :%d not ready after %v; stderr: %s", n, readyTimeout, s.stderr.tail())
		}
		return nil, fmt.Errorf("xvfb: server :%d exited before it was ready; stderr: %s", n, s.stderr.tail())
	}
	got, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		s.kill()
		return nil, fmt.Errorf("xvfb: server :%d wrote %q to -displayfd", n, line)
	}
	s.Number, s.Display = got, ":"+strconv.Itoa(got)
	return s, nil
}

// errIgnoredTerm is Stop's error when the server had to be killed.
var errIgnoredTerm = errors.New("xvfb: the server ignored SIGTERM")

// Stop terminates the server and waits for it; it is idempotent.
func (s *Server) Stop() error {
	var err error
	s.once.Do(func() {
		defer releaseAuth()
		if sigErr := s.cmd.Process.Signal(syscall.SIGTERM); sigErr != nil {
			err = sigErr
		}
		done := make(chan error, 1)
		go func() { done <- s.cmd.Wait() }()
		select {
		case werr := <-done:
			var exit *exec.ExitError
			if werr != nil && !errors.As(werr, &exit) {
				err = werr
			}
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-done
			err = fmt.Errorf("%w: server %s, %v; killed", errIgnoredTerm, s.Display, stopTimeout)
		}
		if s.claim != nil {
			s.claim.Close() // the display number is free for other processes again
		}
	})
	return err
}

// Stderr returns the last part of what the server printed.
func (s *Server) Stderr() string { return s.stderr.tail() }

// kill stops a server that failed to start; tryStart releases its cookie.
func (s *Server) kill() {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	})
}

// lockedBuffer collects the server's stderr, keeping the last 8 KiB.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const stderrKeep = 8 << 10

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.buf.Len() > 2*stderrKeep {
		tail := append([]byte(nil), b.buf.Bytes()[b.buf.Len()-stderrKeep:]...)
		b.buf.Reset()
		b.buf.Write(tail)
	}
	return len(p), nil
}

func (b *lockedBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > stderrKeep {
		s = s[len(s)-stderrKeep:]
	}
	return strings.TrimSpace(s)
}
