// Command deskside is the Deskside technician CLI; see package
// github.com/deskside/deskside/console/cli.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/deskside/deskside/console/cli"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	app := &cli.App{Version: version}
	code := app.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
