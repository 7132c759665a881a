package testkit

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestCI(t *testing.T) {
	for v, want := range map[string]bool{
		"": false, "true": true, "1": true, "yes": true, "TRUE": true, "woodpecker": true,
		"false": false, "0": false, "no": false, "off": false, " false ": false,
	} {
		t.Setenv("CI", v)
		if got := CI(); got != want {
			t.Errorf("CI=%q: CI() = %v, want %v", v, got, want)
		}
	}
}

// recorder stands in for t to see whether Need skips or fails.
type recorder struct {
	testing.TB
	skipped, failed string
	cleanups        []func()
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(f string, a ...any) {
	r.skipped = fmt.Sprintf(f, a...)
}

func (r *recorder) Fatalf(f string, a ...any) {
	r.failed = fmt.Sprintf(f, a...)
}

func (r *recorder) Errorf(f string, a ...any) {
	r.failed = fmt.Sprintf(f, a...)
}

func (r *recorder) Failed() bool { return false }

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func TestNeed(t *testing.T) {
	missing := errors.New("connection refused")
	fix := "install the Debian package postgresql"
	tests := []struct {
		ci         string
		err        error
		skip, fail bool
	}{
		{ci: "", err: nil},
		{ci: "true", err: nil},
		{ci: "", err: missing, skip: true},
		{ci: "false", err: missing, skip: true},
		{ci: "true", err: missing, fail: true},
		{ci: "1", err: missing, fail: true},
	}
	for _, tt := range tests {
		t.Setenv("CI", tt.ci)
		r := &recorder{TB: t}
		Need(r, "PostgreSQL", tt.err, fix)
		if (r.skipped != "") != tt.skip || (r.failed != "") != tt.fail {
			t.Errorf("CI=%q err=%v: skipped %q, failed %q", tt.ci, tt.err, r.skipped, r.failed)
		}
		for _, msg := range []string{r.skipped, r.failed} {
			if msg != "" && (!strings.Contains(msg, "PostgreSQL") || !strings.Contains(msg, fix) || !strings.Contains(msg, "connection refused")) {
				t.Errorf("message %q does not name the service, the cause and the fix", msg)
			}
		}
	}
}

func TestCheckGoroutinesPassesWhenStopped(t *testing.T) {
	CheckGoroutines(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { <-stop; close(done) }()
	t.Cleanup(func() { close(stop); <-done })
}

func TestCheckGoroutinesReportsALeak(t *testing.T) {
	defer func(d time.Duration) { leakGrace = d }(leakGrace)
	leakGrace = 50 * time.Millisecond
	r := &recorder{TB: t}
	CheckGoroutines(r)
	stop := make(chan struct{})
	defer close(stop)
	go leaky(stop)
	for _, f := range r.cleanups {
		f()
	}
	if !strings.Contains(r.failed, "leaky") {
		t.Errorf("the leaked goroutine is not reported: %q", r.failed)
	}
}

func leaky(stop chan struct{}) { <-stop }
