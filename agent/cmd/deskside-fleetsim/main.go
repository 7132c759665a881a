// Command deskside-fleetsim simulates a fleet of Deskside agents against
// relays on this machine: real enrollment, real mutual-TLS streams through
// the agent's link code, realistic inventory and health, scripted relay
// restarts, failovers and outages, and a summary (docs/fleetsim.md).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/deskside/deskside/agent/fleetsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := fleetsim.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
