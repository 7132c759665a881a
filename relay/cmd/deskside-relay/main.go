// Command deskside-relay is the Deskside relay server.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/deskside/deskside/console/web"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/pki"
	"github.com/deskside/deskside/relay/service"
)

var version = "dev"

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	if len(os.Args) > 1 && os.Args[1] == "ca" {
		os.Exit(caCommand(os.Args[2:], os.Stdout, os.Stderr))
	}
	if isBackupCommand(os.Args[1:]) {
		os.Exit(backupMain(os.Args[1:]))
	}
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
	fs.StringVar(&cfg.AuditKeyFile, "audit-key", os.Getenv("DESKSIDE_AUDIT_KEY"), "audit key file sealing the audit log (default <data>/audit.key, created on the first start; relays sharing a database need a copy of the same file, like the CA; keep it off the database host) (env DESKSIDE_AUDIT_KEY)")
	fs.StringVar(&cfg.NATSURL, "nats", os.Getenv("DESKSIDE_NATS"), "NATS URL(s), comma-separated, that the relays of a scaled-out deployment route requests over; empty for one relay (env DESKSIDE_NATS)")
	fs.StringVar(&cfg.NATSPrefix, "nats-prefix", envOr("DESKSIDE_NATS_PREFIX", "default"), "NATS subject prefix separating deployments that share a NATS (env DESKSIDE_NATS_PREFIX)")
	fs.StringVar(&cfg.Listen, "listen", envOr("DESKSIDE_LISTEN", ":7443"), "gRPC listen address for agents and consoles (env DESKSIDE_LISTEN)")
	fs.StringVar(&cfg.WebListen, "web-listen", envOr("DESKSIDE_WEB_LISTEN", ":8443"), `HTTPS listen address of the web console, or "off" (env DESKSIDE_WEB_LISTEN)`)
	fs.StringVar(&cfg.MailListen, "mail-listen", envOr("DESKSIDE_MAIL_LISTEN", "off"), `SMTP listen address for answers by email to ticket mail (point the reply-to domain's MX here), or "off" (env DESKSIDE_MAIL_LISTEN)`)
	fs.StringVar(&cfg.MailDomain, "mail-domain", envOr("DESKSIDE_MAIL_DOMAIN", ""), `name the inbound mail listener greets with (default the first --name) (env DESKSIDE_MAIL_DOMAIN)`)
	fs.StringVar(&cfg.WebURL, "web-url", os.Getenv("DESKSIDE_WEB_URL"), "public base URL of the web console when behind a proxy (default: derived)")
	fs.StringVar(&cfg.TURNListen, "turn-listen", envOr("DESKSIDE_TURN_LISTEN", ":3478"), `built-in TURN server's UDP and TCP address, or "off"`)
	fs.StringVar(&cfg.TURNPublicIP, "turn-ip", envOr("DESKSIDE_TURN_IP", "127.0.0.1"), "IP address TURN relays advertise (the relay's address as agents and browsers reach it)")
	turnAllow := listFlag(splitList(os.Getenv("DESKSIDE_TURN_ALLOW")))
	fs.Func("turn-allow", "peer ranges the built-in TURN server may relay to although it refuses them by default: CIDR ranges or IPs, comma-separated, repeatable (env DESKSIDE_TURN_ALLOW). "+
		"By default it refuses loopback, link-local (169.254.169.254, fe80::/10), private (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7), multicast and other special ranges, and the relay's own addresses, so that session credentials cannot reach the relay's host or network. "+
		"A LAN or lab deployment whose agents and browsers have private addresses allows them, e.g. --turn-allow 10.0.0.0/8; an allowed range that holds the relay's own addresses exposes its services on them",
		func(s string) error { turnAllow = append(turnAllow, splitList(s)...); return nil })
	var turnURLs listFlag
	fs.Var(&turnURLs, "turn-url", "external TURN server URL (repeatable; with DESKSIDE_TURN_SECRET), instead of the built-in one. "+
		"Its credentials cannot be revoked when a session ends (they live out their lifetime, 10 minutes), and what it relays to is its own configuration: "+
		"refuse private and loopback peers there (coturn: denied-peer-ip, no-tcp-relay, no-multicast-peers)")
	fs.StringVar(&cfg.AdminListen, "admin-listen", envOr("DESKSIDE_ADMIN_LISTEN", "127.0.0.1:7444"), `admin listener for /metrics, /healthz and pprof, or "off"`)
	fs.Var(&names, "name", "extra DNS name or IP for the server certificate (repeatable)")
	fs.StringVar(&cfg.AdminName, "admin-name", "admin", "name of the first technician, created when there is none")
	fs.DurationVar(&cfg.HealthInterval, "health-interval", 0, "health sampling interval pushed to agents (0 keeps the agents' own, 15s by default)")
	fs.DurationVar(&cfg.HealthRetention, "health-retention", 7*24*time.Hour, "keep raw health samples this long, then downsample")
	fs.IntVar(&cfg.Ingest.HealthRowsPerHour, "ingest-rows-per-hour", 0, "health samples one device may send per hour, sustained (0: 4 × its sampling rate, 960 at 15s)")
	fs.IntVar(&cfg.Ingest.HealthRowBurst, "ingest-row-burst", 20160, "health samples one device may send at once, such as its backlog after reconnecting")
	fs.IntVar(&cfg.Ingest.InventoryPerHour, "ingest-inventory-per-hour", 30, "inventory reports one device may send per hour, sustained")
	fs.StringVar(&pwFile, "admin-password-file", "", "file holding the first technician's password (else env DESKSIDE_ADMIN_PASSWORD, else generated and printed once)")
	fs.StringVar(&cfg.Reflection, "reflection", envOr("DESKSIDE_REFLECTION", "technicians"), `gRPC reflection: "technicians" (signed-in technicians only) or "off"`)
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
	cfg.TURNAllow = turnAllow
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

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// caCommand runs `deskside-relay ca status|rotate` against a data
// directory; a running relay reads the result within a minute
// (docs/adr/0019-certificate-renewal-and-ca-rotation.md).
func caCommand(args []string, stdout, stderr io.Writer) int {
	usage := "usage: deskside-relay ca status|rotate [--activate|--retire] [--data DIR]"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("deskside-relay ca "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", envOr("DESKSIDE_DATA", "/var/lib/deskside-relay"), "the relay's data directory (env DESKSIDE_DATA)")
	activate := fs.Bool("activate", false, "rotate: make the staged CA the active one (once agents have connected since it was staged)")
	retire := fs.Bool("retire", false, "rotate: stop trusting the previous CA (once agents have renewed their certificates under the new one)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	describe := func(c *x509.Certificate) string {
		return fmt.Sprintf("%s (pin %s, expires %s)", c.Subject.CommonName, wire.CAPin(c.Raw), c.NotAfter.UTC().Format(time.DateOnly))
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "deskside-relay ca:", err); return 1 }
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
