package cli

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWaitEnrolled: an agent started before its enrollment says once what
// it needs and waits; it stops waiting when the state directory changes
// (here a corrupt state, whose error it returns) or when it is stopped.
func TestWaitEnrolled(t *testing.T) {
	state := t.TempDir()
	var logs bytes.Buffer // read only while no goroutine logs to it
	log := slog.New(slog.NewTextHandler(&logs, nil))

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, err := waitEnrolled(ctx, log, state, 10*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitEnrolled without an enrollment returned %v, want it to wait until stopped", err)
	}
	out := logs.String()
	if strings.Count(out, "not enrolled") != 1 || !strings.Contains(out, "deskside-agent enroll --relay HOST:PORT --token TOKEN --state "+state) {
		t.Errorf("the waiting agent's log does not say once what it needs:\n%s", out)
	}

	done := make(chan error, 1)
	go func() {
		_, err := waitEnrolled(context.Background(), slog.New(slog.DiscardHandler), state, 10*time.Millisecond)
		done <- err
	}()
	time.Sleep(30 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(state, "agent.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("waitEnrolled on a corrupt state returned %v, want the corrupt-state error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waitEnrolled did not notice the state directory change")
	}
}
