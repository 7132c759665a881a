// Command deskside-tray runs in the user's graphical session (started at
// login): the Deskside tray icon and the Get help page it serves on
// loopback. Without a system tray it says so and keeps the page
// available; --open opens the page in the browser at start.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/deskside/deskside/agent/tray"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

var version = "dev"

func main() {
	open := flag.Bool("open", false, "open the Get help page in the browser at start")
	requests := flag.Bool("requests", false, "with --open: open My requests instead")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println("deskside-tray", version)
		return
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(logger, *open, *requests); err != nil {
		fmt.Fprintln(os.Stderr, "deskside-tray:", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger, open, requests bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	agent, err := tray.DialAgent(ctx)
	if err != nil {
		logger.Warn("the agent cannot be reached; the Get help page will say so", "err", err)
	}
	// Where logind does not report this session, the service learns its
	// display from here to serve remote sessions on it.
	display, xauth := tray.SessionDisplay()
	go tray.RegisterSession(ctx, tray.SocketPath(), display, xauth, logger)
	var t atomic.Pointer[tray.Tray]
	srv, err := tray.StartServer(tray.ServerOptions{
		Agent: agent, Logger: logger,
		Notify: func(title, body string) {
			if err := tray.Notify(title, body); err != nil {
				logger.Info("no desktop notification", "err", err)
			}
		},
		OnUpdate: func(u *desksidev1.HelpUpdate) {
			if tr := t.Load(); tr != nil {
				tr.Updated(u)
			}
		},
		OnStateChange: func() {
			if tr := t.Load(); tr != nil {
				tr.Refresh()
			}
		},
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	tr := tray.NewTray(agent, srv, tray.OpenBrowser, logger)
	tr.Quit = stop
	t.Store(tr)
	page := ""
	if requests {
		page = "requests"
	}
	if open {
		if err := tr.Open(srv.URL(page)); err != nil {
			fmt.Fprintf(os.Stderr, "deskside-tray: %v; open this address yourself: %s\n", err, srv.URL(page))
		}
	}
	err = tray.RunIcon(ctx, tr)
	if errors.Is(err, tray.ErrNoTrayHost) {
		fmt.Fprintf(os.Stderr, "deskside-tray: %v. The Get help page stays available while this runs: %s (or start it with deskside-tray --open).\n", err, srv.URL(""))
		<-ctx.Done()
		return nil
	}
	return err
}
