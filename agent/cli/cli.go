// Package cli is the deskside-agent command line: enroll, run, service
// install/uninstall/status, and a local inventory dump. The main package only
// calls Main.
package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/deskside/deskside/agent/action"
	"github.com/deskside/deskside/agent/command"
	"github.com/deskside/deskside/agent/desktop"
	"github.com/deskside/deskside/agent/diag"
	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/agent/health"
	"github.com/deskside/deskside/agent/inventory"
	"github.com/deskside/deskside/agent/link"
	"github.com/deskside/deskside/agent/orgtrust"
	"github.com/deskside/deskside/agent/service"
	"github.com/deskside/deskside/agent/spool"
	"github.com/deskside/deskside/agent/traysvc"
	"github.com/deskside/deskside/agent/usersession"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const usage = `deskside-agent: the Deskside endpoint agent

Usage:
  deskside-agent enroll --relay HOST:PORT --token TOKEN [--state DIR] [--force|--keep-existing]
  deskside-agent run [--state DIR] [--health-interval 15s]
  deskside-agent install|uninstall|start|stop|restart [--state DIR]
                                      manage the system service (as root; install
                                      refuses a binary in a temporary directory)
  deskside-agent status [--state DIR] service installed? running? enrolled?
  deskside-agent inventory            print this machine's inventory as JSON
  deskside-agent org pin [--replace] FINGERPRINT [--state DIR]
                                      pin the organisation key (as root); from then
                                      on commands, actions and desktop sessions need
                                      a technician's signed envelope. A pin changes
                                      only with --replace here, or by a hand-over
                                      signed with the pinned key
  deskside-agent policy [--commands on|off] [--desktop on|off] [--groups a,b|none] [--state DIR]
                                      show or set this machine's own policy and device groups (as root)
  deskside-agent update pin FINGERPRINT [--state DIR]
                                      pin the release key (as root); without a pin
                                      the agent refuses every update
  deskside-agent update apply --manifest FILE.release --binary FILE [--state DIR]
                                      install a signed release from files (as root)
  deskside-agent update status [--state DIR]
  deskside-agent version
  deskside-agent desktop-helper --socket PATH
                                      (started by the agent service as the logged-in
                                      user: serves a remote-desktop session in that
                                      user's graphical session)
`

// Main runs the agent command line and returns the exit code.
func Main(ctx context.Context, version string, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "enroll":
		err = cmdEnroll(ctx, version, rest, stdout, stderr)
	case "run":
		err = cmdRun(ctx, version, rest, stderr)
	case "inventory":
		err = cmdInventory(ctx, rest, stdout, stderr)
	case "install", "uninstall", "start", "stop", "restart":
		err = cmdService(cmd, rest, stdout, stderr)
	case "status":
		err = cmdStatus(rest, stdout, stderr)
	case "org":
		err = cmdOrg(rest, stdout, stderr)
	case "policy":
		err = cmdPolicy(rest, stdout, stderr)
	case "update":
		err = cmdUpdate(version, rest, stdout, stderr)
	case "desktop-helper":
		err = cmdDesktopHelper(ctx, rest, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "deskside-agent", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "deskside-agent: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "deskside-agent:", err)
		return 1
	}
	return 0
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("deskside-agent "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func cmdEnroll(ctx context.Context, version string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("enroll", stderr)
	relay := fs.String("relay", "", "relay address HOST:PORT (required)")
	token := fs.String("token", os.Getenv("DESKSIDE_TOKEN"), "enrollment token from `deskside token create` (or env DESKSIDE_TOKEN)")
	state := fs.String("state", DefaultStateDir(), "state directory for the agent's key and certificates")
	force := fs.Bool("force", false, "replace an existing identity")
	keep := fs.Bool("keep-existing", false, "when already enrolled, keep that identity and succeed (installers that may run again on upgrade)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *relay == "" || *token == "" {
		return errors.New("enroll needs --relay HOST:PORT and --token TOKEN")
	}
	if *force && *keep {
		return errors.New("enroll: --force and --keep-existing contradict each other: pass one")
	}
	host, _ := os.Hostname()
	st, err := enroll.Enroll(ctx, enroll.Options{
		Relay: *relay, Token: *token, StateDir: *state, Hostname: host, Version: version, Force: *force,
	})
	if *keep && errors.Is(err, enroll.ErrAlreadyEnrolled) {
		fmt.Fprintf(stdout, "Already enrolled (identity in %s): kept it, the token was not used. Replace it with: deskside-agent enroll --force --relay HOST:PORT --token TOKEN --state %s\n", *state, *state)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Enrolled as device %s with relay %s.\nIdentity stored in %s.\n", st.DeviceID, st.Relay, st.Dir)
	if st.OrgFingerprint != "" {
		fmt.Fprintf(stdout, "Pinned organisation key %s (from the token): commands, actions and desktop sessions need a technician's envelope signed under it.\n", st.OrgFingerprint)
	}
	fmt.Fprintf(stdout, "Start the agent with: deskside-agent run --state %s\n", st.Dir)
	return nil
}

func logger(stderr io.Writer, format string) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(stderr, nil))
	}
	return slog.New(slog.NewJSONHandler(stderr, nil))
}

func cmdRun(ctx context.Context, version string, args []string, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	state := fs.String("state", DefaultStateDir(), "state directory")
	interval := fs.Duration("health-interval", 15*time.Second, "health sampling interval (the relay may override it)")
	invInterval := fs.Duration("inventory-interval", 10*time.Minute, "how often to check the inventory for changes")
	spoolMax := fs.Int("spool-max", spool.DefaultMax, "most health samples kept while the relay is unreachable")
	spoolMaxBytes := fs.Int64("spool-max-bytes", spool.DefaultMaxBytes, "largest size of the health spool file while the relay is unreachable (oldest samples dropped first)")
	logFormat := fs.String("log-format", "json", "log format: json or text")
	consentTimeout := fs.Duration("consent-timeout", 30*time.Second, "how long a remote session's consent prompt waits for the device's user; no answer denies")
	display := fs.String("display", os.Getenv("DISPLAY"), "X display for remote-desktop sessions (default $DISPLAY; a root service without one serves the console user's session through a helper)")
	ipcSocket := fs.String("ipc-socket", usersession.DefaultSocket, "local IPC socket (on Windows a named pipe) for the desktop helper and the users' trays")
	wait := fs.Bool("wait-enrollment", false, "when not enrolled, log what is needed and wait for `deskside-agent enroll` instead of exiting (the packages' service does this)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := logger(stderr, *logFormat)
	upd, pending, err := startUpdate(log, *state, version)
	if err != nil {
		return err
	}
	logUpdatePin(log, *state)
	run := func(ctx context.Context) error {
		ctx, stop := context.WithCancel(ctx)
		defer stop()
		var installed atomic.Bool
		if pending != nil {
			// Roll back if this version is still unconfirmed at its deadline.
			t := time.AfterFunc(time.Until(pending.Deadline), func() {
				if err := upd.Expired(); err != nil {
					log.Error("update rolled back", "err", err)
					restartProcess()
				}
			})
			defer t.Stop()
		}
		st, err := enroll.Load(*state)
		if errors.Is(err, enroll.ErrNotEnrolled) && *wait {
			st, err = waitEnrolled(ctx, log, *state, enrollPoll)
		}
		if err != nil {
			return err
		}
		sp, err := spool.OpenWith(filepath.Join(*state, "spool"), spool.Options{MaxItems: *spoolMax, MaxBytes: *spoolMaxBytes, Logger: log})
		if err != nil {
			return err
		}
		defer sp.Close()
		host, _ := os.Hostname()
		relayHost, _, _ := net.SplitHostPort(st.Relay)
		guard, err := orgtrust.Open(st.Dir, st.DeviceID, log, nil)
		if err != nil {
			return err
		}
		defer guard.Close()
		checks := diag.New(diag.Options{Logger: log, RelayHost: st.Relay, RootCAs: st.TLSConfig().RootCAs})
		trays := &traysvc.Service{Triage: checks, Logger: log}
		desk, owner, closeDesk := desktopRunner(log, *display, *ipcSocket, *consentTimeout, trays)
		desk = trays.Sessions(desk, owner) // the screen owner's trays show each session, with End session
		defer closeDesk()
		l, err := link.New(link.Config{
			Guard: guard,
			State: st, Spool: sp, Inventory: inventory.New(log), Health: health.NewSampler(log, health.Options{}),
			// The HTTPS check targets the relay, trusting the pinned CA.
			Checks:         checks,
			Commands:       command.New(command.Options{Logger: log}),
			Actions:        action.New(action.Options{Logger: log}),
			Desktop:        desk,
			HealthInterval: *interval, InventoryInterval: *invInterval, Hostname: host, Version: version, Logger: log,
			OnHelpUpdate: trays.Push,
			Updates:      upd,
			OnUpdateInstalled: func() {
				installed.Store(true)
				stop()
			},
			LastUpdate: func() *desksidev1.UpdateStatus { return lastUpdate(*state) },
			OnConnected: func() {
				if upd.Confirm() {
					log.Info("update confirmed: this version reached the relay", "version", version)
				}
			},
		})
		if err != nil {
			return err
		}
		trays.SetLink(l)
		log.Info("agent starting", "version", version, "device", st.DeviceID, "relay", st.Relay, "relay_host", relayHost)
		err = l.Run(ctx)
		log.Info("agent stopped")
		if installed.Load() {
			restartProcess() // into the new version
		}
		return err
	}
	return service.Run(ctx, serviceConfig(*state), run)
}

// enrollPoll is how often a waiting agent looks for an enrollment.
const enrollPoll = 5 * time.Second

// waitEnrolled waits until the state directory holds an identity, saying
// once what the agent needs: an installed service that was given no relay
// and token starts anyway and picks the enrollment up by itself.
func waitEnrolled(ctx context.Context, log *slog.Logger, state string, every time.Duration) (*enroll.State, error) {
	log.Warn("not enrolled: waiting for an enrollment, checked every "+every.String(),
		"state", state,
		"next_step", "run: deskside-agent enroll --relay HOST:PORT --token TOKEN --state "+state+
			" (a token comes from `deskside token create` on the relay)"+packageEnrollHint)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		st, err := enroll.Load(state)
		if errors.Is(err, enroll.ErrNotEnrolled) {
			continue
		}
		if err == nil {
			log.Info("enrolled: starting", "device", st.DeviceID, "relay", st.Relay)
		}
		return st, err
	}
}

// desktopRunner is the agent's remote desktop: in this process on the
// display given (the agent runs in a user's session, or `make run`), or,
// for a root service with no display (Linux) or the LocalSystem service
// (Windows), in a helper launched in the console user's graphical session
// (agent/usersession). The same socket serves
// the users' trays (agent/traysvc). The uid is whose screen the sessions
// show: this process's own in process, and for the helper the console
// user the runner finds per session (traysvc.NoOwner: it reports them).
func desktopRunner(log *slog.Logger, display, socket string, consentTimeout time.Duration, trays *traysvc.Service) (link.DesktopRunner, uint32, func()) {
	self := uint32(os.Getuid())
	// Without a dialog program the prompt asks on this user's tray.
	inProcess := desktop.NewManager(desktop.Options{Logger: log, Display: display, ConsentTimeout: consentTimeout, Tray: trays.Asker(self)})
	if !usersession.UseHelper(display) {
		// No helper, but the trays still reach this agent over the socket
		// where it can listen (as root, or --ipc-socket in a directory of
		// the user's): Get help, the session's state, consent questions.
		r, err := usersession.NewRunner(usersession.Config{Socket: socket, Logger: log, Serve: trays.Serve})
		if err != nil {
			log.Info("the users' trays cannot reach this agent; to let them, pass --ipc-socket PATH in a directory you can write and start deskside-tray with DESKSIDE_AGENT_SOCKET=PATH",
				"err", err)
			return inProcess, self, func() {}
		}
		log.Info("serving the users' trays", "socket", socket)
		return inProcess, self, func() {
			trays.Close()
			r.Close()
		}
	}
	r, err := usersession.NewRunner(usersession.Config{Socket: socket, Logger: log, ConsentTimeout: consentTimeout,
		Serve: trays.Serve, AskTray: trays.AskConsent})
	if err != nil {
		log.Error("remote desktop: cannot serve the console user's session (sessions will find no display)", "err", err)
		return inProcess, self, func() {}
	}
	log.Info("remote desktop: serving the console user's graphical session through a helper", "socket", socket)
	return r, traysvc.NoOwner, func() {
		trays.Close()
		r.Close()
	}
}

// cmdDesktopHelper runs one session in the user's graphical session for
// the agent service (usersession.RunHelper).
func cmdDesktopHelper(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("desktop-helper", stderr)
	socket := fs.String("socket", usersession.DefaultSocket, "the agent service's local IPC socket (on Windows its named pipe)")
	consentTimeout := fs.Duration("consent-timeout", 0, "how long the consent prompt waits for the user (default 30s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := logger(stderr, "json").With("component", "desktop-helper", "pid", os.Getpid())
	return usersession.RunHelper(ctx, *socket, log, *consentTimeout)
}

func serviceConfig(state string) service.Config {
	return service.Config{
		Name: service.AgentName, DisplayName: service.AgentDisplayName,
		Description: service.AgentDescription,
		Arguments:   service.AgentArguments(state),
	}
}

func cmdService(action string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags(action, stderr)
	state := fs.String("state", DefaultStateDir(), "state directory the service runs with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := serviceConfig(*state)
	err := service.Check(cfg, action)
	if errors.Is(err, service.ErrNotPrivileged) {
		return fmt.Errorf("%s: %w: %s", action, err, service.ElevateHint(commandLine(action, args)))
	}
	var tmp *service.TemporaryBinaryError
	if errors.As(err, &tmp) {
		// Name the whole next command, with the state directory given.
		return fmt.Errorf("%s: %s: %w: copy it to a fixed place first: sudo install -m 0755 %s %s && sudo %s",
			action, tmp.Path, service.ErrTemporaryBinary, tmp.Path, service.FixedInstallPath,
			strings.Join(append([]string{service.FixedInstallPath, "install"}, stateArgs(args)...), " "))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	if action == "install" {
		if _, err := enroll.Load(*state); err != nil {
			return fmt.Errorf("install: %w", err)
		}
	}
	res, err := service.Control(cfg, action)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deskside-agent: %s done (service manager: %s)\n", action, res.Platform)
	for _, f := range res.Removed {
		fmt.Fprintf(stdout, "removed %s, which the service manager left behind\n", f)
	}
	autostartAfter(action, stdout)
	if action == "install" {
		fmt.Fprintf(stdout, "Start it with: %s\n", commandLine("start", stateArgs(args)))
	}
	return nil
}

// commandLine is the deskside-agent command line to run action with args.
func commandLine(action string, args []string) string {
	exe, err := os.Executable()
	if err != nil {
		exe = "deskside-agent"
	}
	return strings.Join(append([]string{exe, action}, args...), " ")
}

// stateArgs keeps only the --state flag of args.
func stateArgs(args []string) []string {
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "--state=") || strings.HasPrefix(a, "-state="):
			return []string{a}
		case (a == "--state" || a == "-state") && i+1 < len(args):
			return args[i : i+2]
		}
	}
	return nil
}

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	state := fs.String("state", DefaultStateDir(), "state directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	svc, svcErr := service.Query(serviceConfig(*state))
	st, enrollErr := enroll.Load(*state)
	fmt.Fprint(stdout, statusText(service.Platform(), svc, svcErr, *state, st, enrollErr))
	return nil
}

// statusText renders `deskside-agent status`.
func statusText(platform string, svc service.State, svcErr error, stateDir string, st *enroll.State, enrollErr error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Service manager  %s\n", cmp.Or(platform, "none detected"))
	if svcErr != nil {
		fmt.Fprintf(&b, "Service          %v\n", svcErr)
	} else {
		fmt.Fprintf(&b, "Service          %s\n", svc)
	}
	switch {
	case enrollErr == nil:
		fmt.Fprintf(&b, "Enrolled         yes, device %s with relay %s (since %s)\n", st.DeviceID, st.Relay, st.Enrolled.Format(time.DateOnly))
	case errors.Is(enrollErr, enroll.ErrNotEnrolled):
		b.WriteString("Enrolled         no: run deskside-agent enroll --relay HOST:PORT --token TOKEN --state " + stateDir + "\n")
	default:
		fmt.Fprintf(&b, "Enrolled         unknown: %v\n", enrollErr)
	}
	fmt.Fprintf(&b, "State directory  %s\n", stateDir)
	return b.String()
}

func cmdInventory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("inventory", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	inv, err := inventory.New(logger(stderr, "text")).Read(ctx)
	if err != nil {
		return err
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(inv)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, string(b))
	return err
}
