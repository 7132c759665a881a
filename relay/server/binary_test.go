package server_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
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

// The relay binary starts on a fresh data directory, prints the generated
// admin password once, logs JSON, and exits 0 promptly on SIGTERM; on
// restart it reuses its CA and does not print a password again.
func TestRelayBinaryLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the relay binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "deskside-relay")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/deskside/deskside/relay/cmd/deskside-relay").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	run := func() (stdout, stderr string) {
		cmd := exec.Command(bin, "--config=", "--data", data, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), "DESKSIDE_ADMIN_PASSWORD=")
		var o, e syncBuffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		checkFor(t, 20*time.Second, 20*time.Millisecond, func() error {
			if !strings.Contains(e.String(), "relay listening") {
				return errNotYet
			}
			return nil
		})
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("exit after SIGTERM: %v\n%s", err, e.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatal("relay did not stop within 10s of SIGTERM")
		}
		return o.String(), e.String()
	}
	out1, log1 := run()
	if !strings.Contains(out1, "Password (shown once") {
		t.Fatalf("first start did not print the admin password:\n%s", out1)
	}
	if !strings.HasPrefix(strings.TrimSpace(log1), "{") || !strings.Contains(log1, `"msg":"relay stopped"`) {
		t.Fatalf("logs are not JSON or shutdown not logged:\n%s", log1)
	}
	ca1, _ := os.ReadFile(filepath.Join(data, "ca.pem"))
	out2, _ := run()
	if strings.Contains(out2, "Password") {
		t.Fatalf("restart printed a password again:\n%s", out2)
	}
	ca2, _ := os.ReadFile(filepath.Join(data, "ca.pem"))
	if !bytes.Equal(ca1, ca2) || len(ca1) == 0 {
		t.Fatal("CA changed across restarts")
	}
}
