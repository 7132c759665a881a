//go:build unix

package cli_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/server/servertest"
)

// TestRunRelayGone stops the relay while `deskside run` streams a command:
// the CLI must say the relay went away (and what to do), not blame the
// device.
func TestRunRelayGone(t *testing.T) {
	f := startFleet(t)
	dev := f.agent(t, "gone-host")
	c := f.admin(t)
	code, msg := runUntilStarted(t, c, dev, f.st.Stop)
	if code != 1 || strings.Contains(msg, "disconnected") ||
		!strings.Contains(msg, "lost the connection to the relay at "+f.addr) || !strings.Contains(msg, "deskside audit") {
		t.Errorf("relay gone mid-run: exit %d, stderr %q", code, msg)
	}
}

// TestRunDeviceGone stops the agent instead: that is the device's doing.
func TestRunDeviceGone(t *testing.T) {
	f := startFleet(t)
	dev, agent := f.agentRun(t, "gone-device", staticInventory{"gone-device"})
	c := f.admin(t)
	code, msg := runUntilStarted(t, c, dev, agent.Stop)
	if code != 1 || !strings.Contains(msg, "device "+dev+" disconnected") || strings.Contains(msg, "lost the connection to the relay") {
		t.Errorf("device gone mid-run: exit %d, stderr %q", code, msg)
	}
}

// runUntilStarted runs a long command on dev, calls stop once it runs, and
// returns the CLI's exit code and standard error.
func runUntilStarted(t *testing.T, c *cliEnv, dev string, stop func()) (int, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- c.runCtx(context.Background(), &stdout, &stderr, "run", dev, "--", "echo started; exec sleep 300")
	}()
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(stdout.String(), "started") {
			return errors.New("the command has not started yet")
		}
		return nil
	})
	stop()
	var code int
	select {
	case code = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after the relay stopped")
	}
	msg := stderr.String()
	t.Logf("exit %d, stderr %q", code, msg)
	return code, msg
}
