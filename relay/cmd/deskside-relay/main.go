// Command deskside-relay is the Deskside relay server.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/deskside/deskside/console/web"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/config"
	"github.com/deskside/deskside/relay/pki"
	"github.com/deskside/deskside/relay/service"
)

var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "ca" {
		os.Exit(caCommand(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "config" {
		os.Exit(config.Command(os.Args[2:], os.Stdout, os.Stderr, os.LookupEnv))
	}
	if len(os.Args) > 1 && os.Args[1] == "downloads" {
		os.Exit(downloadsCommand(os.Args[2:], os.LookupEnv, os.Stdout, os.Stderr))
	}
	if isBackupCommand(os.Args[1:]) {
		os.Exit(backupMain(os.Args[1:]))
	}
	c, err := config.Load(config.Options{Name: "deskside-relay", Args: os.Args[1:], LookupEnv: os.LookupEnv, DefaultFile: config.DefaultFile, Stderr: os.Stderr})
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case errors.Is(err, config.ErrUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "deskside-relay:", err)
		os.Exit(2)
	}
	if c.ShowVersion {
		fmt.Println("deskside-relay", version)
		return
	}
	cfg := c.Service()
	cfg.Version = version
	cfg.WebFiles = web.Files()
	cfg.Logger = c.Logger(os.Stderr)
	if c.File != "" {
		cfg.Logger.Info("configuration file read", "path", c.File)
	}
	for _, w := range c.Warnings {
		cfg.Logger.Warn(w)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := service.New(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "deskside-relay:", err)
		os.Exit(1)
	}
	if err := srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "deskside-relay:", err)
		os.Exit(1)
	}
}

// caCommand runs `deskside-relay ca status|rotate` against a data
// directory; a running relay reads the result within a minute
// (docs/adr/0019-certificate-renewal-and-ca-rotation.md).
func caCommand(args []string, stdout, stderr io.Writer) int {
	usage := "usage: deskside-relay ca status|rotate [--activate|--retire] [--config FILE] [--data DIR]"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("deskside-relay ca "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	storage := config.StorageFlags(fs, os.LookupEnv, config.DefaultFile, false, false)
	activate := fs.Bool("activate", false, "rotate: make the staged CA the active one (once agents have connected since it was staged)")
	retire := fs.Bool("retire", false, "rotate: stop trusting the previous CA (once agents have renewed their certificates under the new one)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "deskside-relay ca:", err); return 1 }
	st, err := storage()
	if err != nil {
		return fail(err)
	}
	dir := &st.Data
	describe := func(c *x509.Certificate) string {
		return fmt.Sprintf("%s (pin %s, expires %s)", c.Subject.CommonName, wire.CAPin(c.Raw), c.NotAfter.UTC().Format(time.DateOnly))
	}
	switch {
	case args[0] == "status":
		st, err := pki.Status(*dir)
		if err != nil {
			return fail(fmt.Errorf("%w (is --data the relay's data directory?)", err))
		}
		fmt.Fprintln(stdout, "active:  ", describe(st.Active))
		if st.Next != nil {
			fmt.Fprintln(stdout, "staged:  ", describe(st.Next), "— activate with `deskside-relay ca rotate --activate`")
		}
		for _, p := range st.Previous {
			fmt.Fprintln(stdout, "previous:", describe(p), "— retire with `deskside-relay ca rotate --retire`")
		}
	case args[0] == "rotate" && *activate && *retire:
		return fail(errors.New("--activate and --retire are separate steps: run one, then the other later"))
	case args[0] == "rotate" && *activate:
		if err := pki.Activate(*dir); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, "The staged CA is active: relays sign their server certificate with it within a minute, and agents renew their certificates under it when they next connect.")
		fmt.Fprintln(stdout, "New enrollment tokens carry its pin; tokens created before no longer enroll. Once every agent has connected, run `deskside-relay ca rotate --retire`.")
	case args[0] == "rotate" && *retire:
		prev, err := pki.Retire(*dir)
		if err != nil {
			return fail(err)
		}
		if len(prev) == 0 {
			fmt.Fprintln(stdout, "No previous CA to retire.")
		}
		for _, p := range prev {
			fmt.Fprintln(stdout, "Retired", describe(p)+": device certificates it signed are refused from now on (re-enroll such agents with a new token).")
		}
	case args[0] == "rotate":
		next, err := pki.Stage(*dir, time.Now())
		if err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, "Staged", describe(next)+".")
		fmt.Fprintln(stdout, "Relays trust it within a minute and hand it to every agent that connects. When every agent has connected since now, run `deskside-relay ca rotate --activate`.")
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	return 0
}
