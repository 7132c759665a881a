// Package testkit holds the rules every Deskside test follows about what it
// needs from the machine:
//
//   - Need: a test that needs a service or tool (PostgreSQL, NATS, Xvfb,
//     Chromium, root) skips when it is missing on a developer's machine and
//     fails under CI, where a missing service is a broken setup rather than
//     a reason to pass. CI is on when $CI holds a true value ("true", "1",
//     "yes", …); "false", "0" and unset mean off.
//   - Heavy: a suite that starts Xvfb, a browser, or talks to PostgreSQL or
//     NATS skips under -short, even under CI, so `go test -short ./...` is a
//     fast inner loop. `make test` runs everything.
//   - CheckGoroutines: fail a test that leaves goroutines behind (built on
//     go.uber.org/goleak).
package testkit

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// CI reports whether the tests run under continuous integration: $CI is set
// to anything but a false value ("false", "0", "no", "off").
func CI() bool {
	v := strings.TrimSpace(os.Getenv("CI"))
	if v == "" {
		return false
	}
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	switch strings.ToLower(v) {
	case "no", "off":
		return false
	}
	return true
}

// Need makes t depend on what (a service, tool or privilege, such as
// "PostgreSQL" or "Xvfb"): when err, the reason it cannot be used, is not
// nil, t is skipped, or failed under CI. fix tells how to get it, such as
// "install the Debian package xvfb (make deps)" or "set DESKSIDE_TEST_NATS
// to a NATS server's URL"; it is part of the message either way.
func Need(t testing.TB, what string, err error, fix string) {
	t.Helper()
	if err == nil {
		return
	}
	if CI() {
		t.Fatalf("%s is required under CI (CI=%s) but cannot be used: %v; %s", what, os.Getenv("CI"), err, fix)
		return
	}
	t.Skipf("skipping: %s cannot be used: %v; %s (under CI=true this fails)", what, err, fix)
}

// NeedOK is Need for a condition: t needs what, and ok says whether it is
// there; why says what is missing when it is not.
func NeedOK(t testing.TB, what string, ok bool, why, fix string) {
	t.Helper()
	if !ok {
		Need(t, what, errors.New(why), fix)
	}
}

// Heavy skips t under -short, with why (such as "starts Xvfb" or "needs
// PostgreSQL") in the message. It is called by the shared harnesses that
// start Xvfb or a browser or connect to PostgreSQL or NATS, so a test using
// them need not call it itself.
func Heavy(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: %s (run without -short, or make test, to include it)", why)
	}
}

// CheckGoroutines fails t if goroutines that were not running when it was
// called are still running once t has ended. Call it first in the test, so
// that its check runs after every cleanup registered later (cleanups run
// last in, first out). Goroutines get leakGrace to wind down.
//
// The check sees the whole process: do not use it in a test that runs in
// parallel with others (t.Parallel) in the same package. ignore lists
// functions (as in a goroutine's stack, "pkg.Func") whose goroutines may
// outlive the test, such as a library's process-wide workers.
func CheckGoroutines(t testing.TB, ignore ...string) {
	t.Helper()
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	for _, f := range ignore {
		opts = append(opts, goleak.IgnoreAnyFunction(f))
	}
	t.Cleanup(func() {
		if t.Failed() {
			return // the failure is the news; what it left running is noise
		}
		// goleak.Find retries for about half a second; closing gRPC or
		// NATS connections can take longer on a loaded machine.
		deadline := time.Now().Add(leakGrace)
		for {
			err := goleak.Find(opts...)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("goroutines still running %v after the test ended (something it started was not closed or stopped): %v", leakGrace, err)
				return
			}
		}
	})
}

// leakGrace is how long CheckGoroutines waits for goroutines to end.
var leakGrace = 10 * time.Second
