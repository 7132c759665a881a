package fleetsim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// Main is deskside-fleetsim's command line; it returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if IsWorker() {
		if err := RunWorker(ctx, os.Stdin, stdout, stderr); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	fs := flag.NewFlagSet("deskside-fleetsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	var relays, events, relayArgs listFlag
	var script string
	fs.IntVar(&cfg.Agents, "agents", 100, "how many agents to simulate")
	fs.DurationVar(&cfg.Duration, "duration", 2*time.Minute, "how long the fleet runs once every agent is connected (events happen within it)")
	seed := fs.Uint64("seed", 1, "seed of the inventory templates (the same seed, the same fleet)")
	fs.DurationVar(&cfg.HealthInterval, "health-interval", 15*time.Second, "health sampling period of each agent (the relay's health_interval overrides it)")
	fs.DurationVar(&cfg.SampleJitter, "sample-jitter", 0, "each sample is delayed by up to this (default a tenth of the interval, at most 1s)")
	fs.DurationVar(&cfg.InventoryInterval, "inventory-interval", 10*time.Minute, "how often agents re-read their inventory")
	fs.IntVar(&cfg.PerWorker, "per-worker", 4000, "most agents per worker process (lowered to fit the open-file limit)")
	fs.IntVar(&cfg.SourceAddrs, "source-addrs", 0, "loopback source addresses to dial from, 127.0.0.1 upwards (0: as many as the ephemeral port range needs)")
	fs.IntVar(&cfg.EnrollParallel, "enroll-parallel", 8, "enrollments in flight per worker")
	fs.StringVar(&cfg.StateDir, "state-dir", "", "where workers keep the agents' keys and spools, removed at the end (default /dev/shm, else the temporary directory)")
	fs.DurationVar(&cfg.SettleTimeout, "settle-timeout", 0, "how long to wait for every agent to enroll and connect before the events (default 2m + 100ms per agent)")
	fs.Var(&relays, "relay", "a relay's agent address HOST:PORT (repeat for several relays behind one name); not with --start-relays")
	fs.StringVar(&cfg.Token, "token", "", "enrollment token with at least --agents uses (deskside token create --uses N)")
	fs.StringVar(&cfg.CAFile, "ca", "", "the relay's CA certificate, to send console requests to an existing relay (with --admin-password-file)")
	fs.StringVar(&cfg.AdminUser, "admin-user", "admin", "technician who sends the console requests")
	pwFile := fs.String("admin-password-file", "", "file holding that technician's password")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow relays at non-loopback addresses (a simulated fleet is load)")
	fs.IntVar(&cfg.StartRelays, "start-relays", 0, "start this many relays (2 or more need --database and --nats), so that events can restart and kill them")
	fs.StringVar(&cfg.RelayBin, "relay-bin", "", "the deskside-relay program to start (default: beside this program, then $PATH)")
	fs.StringVar(&cfg.RelayData, "relay-data", "", "directory for the started relays' data, kept after the run (default a temporary directory, removed)")
	fs.StringVar(&cfg.Database, "database", "", "PostgreSQL URL for the started relays (default: SQLite in each relay's data)")
	fs.StringVar(&cfg.NATS, "nats", "", "NATS URL for the started relays")
	fs.StringVar(&cfg.NATSPrefix, "nats-prefix", "", "NATS subject prefix for the started relays")
	fs.Var(&relayArgs, "relay-arg", "a further flag for the started relays (repeat), such as --relay-arg=--health-interval=15s")
	fs.Var(&events, "event", "a scripted event AT:KIND[=ARG] (repeat): 30s:restart, 30s:restart=1, 60s:kill=0, 90s:blackhole=10s, 120s:inventory=25%, 150s:fanout")
	fs.StringVar(&cfg.BlackholeIn, "blackhole-in", "auto", "where blackhole events cut the network: kernel (nftables; root), agents (simulated at their side), or auto (kernel where it can)")
	fs.StringVar(&script, "script", "", "file of events, one per line as --event takes them")
	fs.IntVar(&cfg.ConsoleRequests, "console-requests", 20, "devices that get a console request (ping, or a command for one in four) after each event")
	fs.BoolVar(&cfg.Unsigned, "unsigned", false, "agents pin no organisation key and commands go unsigned (default: the simulator makes an organisation key the agents pin and signs every command)")
	fs.StringVar(&cfg.Report, "report", "", "write the summary as JSON to this file, with every agent's last acknowledged sample")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: deskside-fleetsim [flags]\n\nSimulates Deskside agents against relays on this machine (docs/fleetsim.md).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "deskside-fleetsim: unexpected argument %q (every setting is a flag; see -h)\n", fs.Arg(0))
		return 2
	}
	cfg.Seed, cfg.Relays, cfg.RelayArgs = *seed, relays, relayArgs
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			fmt.Fprintf(stderr, "deskside-fleetsim: %v\n", err)
			return 2
		}
		cfg.AdminPassword = strings.TrimSpace(string(b))
	}
	if script != "" {
		b, err := os.ReadFile(script)
		if err != nil {
			fmt.Fprintf(stderr, "deskside-fleetsim: %v\n", err)
			return 2
		}
		evs, err := ParseScript(string(b))
		if err != nil {
			fmt.Fprintf(stderr, "deskside-fleetsim: %s: %v\n", script, err)
			return 2
		}
		cfg.Events = append(cfg.Events, evs...)
	}
	for _, e := range events {
		ev, err := ParseEvent(e)
		if err != nil {
			fmt.Fprintf(stderr, "deskside-fleetsim: %v\n", err)
			return 2
		}
		cfg.Events = append(cfg.Events, ev)
	}
	cfg.Out, cfg.Stderr = stdout, stderr
	if _, err := Run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "deskside-fleetsim: %v\n", err)
		return 1
	}
	return 0
}
