// Command deskside-agent is the Deskside endpoint agent.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/deskside/deskside/agent/cli"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, version, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
