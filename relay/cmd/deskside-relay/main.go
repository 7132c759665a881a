// Command deskside-relay is the Deskside relay server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/deskside/deskside/console/web"
	"github.com/deskside/deskside/relay/service"
)

var version = "dev"

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var (
		cfg       service.Config
		names     listFlag
		logFormat string
		showVer   bool
		pwFile    string
	)
	fs := flag.NewFlagSet("deskside-relay", flag.ExitOnError)
	fs.StringVar(&cfg.DataDir, "data", envOr("DESKSIDE_DATA", "/var/lib/deskside-relay"), "data directory: CA, certificates, SQLite database (env DESKSIDE_DATA)")
	fs.StringVar(&cfg.Database, "database", "", "PostgreSQL URL (postgres://user@host:5432/db?sslmode=verify-full) of the database the relays share; empty for SQLite in the data directory (env DESKSIDE_DATABASE; prefer it, or PGPASSWORD or ~/.pgpass, to a password on the command line)")
	fs.StringVar(&cfg.NATSURL, "nats", os.Getenv("DESKSIDE_NATS"), "NATS URL(s), comma-separated, that the relays of a scaled-out deployment route requests over; empty for one relay (env DESKSIDE_NATS)")
	fs.StringVar(&cfg.NATSPrefix, "nats-prefix", envOr("DESKSIDE_NATS_PREFIX", "default"), "NATS subject prefix separating deployments that share a NATS (env DESKSIDE_NATS_PREFIX)")
	fs.StringVar(&cfg.Listen, "listen", envOr("DESKSIDE_LISTEN", ":7443"), "gRPC listen address for agents and consoles (env DESKSIDE_LISTEN)")
	fs.StringVar(&cfg.WebListen, "web-listen", envOr("DESKSIDE_WEB_LISTEN", ":8443"), `HTTPS listen address of the web console, or "off" (env DESKSIDE_WEB_LISTEN)`)
	fs.StringVar(&cfg.WebURL, "web-url", os.Getenv("DESKSIDE_WEB_URL"), "public base URL of the web console when behind a proxy (default: derived)")
	fs.StringVar(&cfg.TURNListen, "turn-listen", envOr("DESKSIDE_TURN_LISTEN", ":3478"), `built-in TURN server's UDP and TCP address, or "off"`)
	fs.StringVar(&cfg.TURNPublicIP, "turn-ip", envOr("DESKSIDE_TURN_IP", "127.0.0.1"), "IP address TURN relays advertise (the relay's address as agents and browsers reach it)")
	var turnURLs listFlag
	fs.Var(&turnURLs, "turn-url", "external TURN server URL (repeatable; with DESKSIDE_TURN_SECRET), instead of the built-in one")
	fs.StringVar(&cfg.AdminListen, "admin-listen", envOr("DESKSIDE_ADMIN_LISTEN", "127.0.0.1:7444"), `admin listener for /metrics, /healthz and pprof, or "off"`)
	fs.Var(&names, "name", "extra DNS name or IP for the server certificate (repeatable)")
	fs.StringVar(&cfg.AdminName, "admin-name", "admin", "name of the first technician, created when there is none")
	fs.DurationVar(&cfg.HealthInterval, "health-interval", 0, "health sampling interval pushed to agents (0 keeps the agents' own, 15s by default)")
	fs.DurationVar(&cfg.HealthRetention, "health-retention", 7*24*time.Hour, "keep raw health samples this long, then downsample")
	fs.IntVar(&cfg.Ingest.HealthRowsPerHour, "ingest-rows-per-hour", 0, "health samples one device may send per hour, sustained (0: 4 × its sampling rate, 960 at 15s)")
	fs.IntVar(&cfg.Ingest.HealthRowBurst, "ingest-row-burst", 20160, "health samples one device may send at once, such as its backlog after reconnecting")
	fs.IntVar(&cfg.Ingest.InventoryPerHour, "ingest-inventory-per-hour", 30, "inventory reports one device may send per hour, sustained")
	fs.StringVar(&pwFile, "admin-password-file", "", "file holding the first technician's password (else env DESKSIDE_ADMIN_PASSWORD, else generated and printed once)")
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	fs.BoolVar(&showVer, "version", false, "print the version and exit")
	fs.Parse(os.Args[1:])
	if showVer {
		fmt.Println("deskside-relay", version)
		return
	}
	// The environment is read after parsing, not used as the flag's
	// default, so that -help does not print a password it may hold.
	if cfg.Database == "" {
		cfg.Database = os.Getenv("DESKSIDE_DATABASE")
	}
	cfg.Names = names
	cfg.TURNExternalURLs = turnURLs
	cfg.TURNSecret = os.Getenv("DESKSIDE_TURN_SECRET")
	cfg.AdminPassword = os.Getenv("DESKSIDE_ADMIN_PASSWORD")
	if pwFile != "" {
		b, err := os.ReadFile(pwFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "deskside-relay: --admin-password-file:", err)
			os.Exit(2)
		}
		cfg.AdminPassword = strings.TrimSpace(string(b))
	}
	cfg.Version = version
	cfg.WebFiles = web.Files()
	var h slog.Handler = slog.NewJSONHandler(os.Stderr, nil)
	if logFormat == "text" {
		h = slog.NewTextHandler(os.Stderr, nil)
	}
	cfg.Logger = slog.New(h)

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

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
