// Command deskside-dev is what `make run` starts: a relay, a local agent
// and a signed-in CLI on this machine (see internal/devrun).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/deskside/deskside/internal/devrun"
)

func main() {
	var cfg devrun.Config
	flag.StringVar(&cfg.Bin, "bin", "bin", "directory holding the built binaries")
	flag.StringVar(&cfg.Data, "data", ".deskside-dev", "data directory, kept between runs")
	flag.BoolVar(&cfg.Fresh, "fresh", false, "delete the data directory of previous runs first (new password, no devices)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := devrun.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "make run:", err)
		os.Exit(1)
	}
}
