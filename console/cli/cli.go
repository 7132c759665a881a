// Package cli is the deskside technician command line: it signs in to a
// relay, lists and inspects the fleet, exports inventory, runs diagnostics,
// commands and remediation actions on devices, creates enrollment tokens
// and reads the audit log, all through the relay's ConsoleService.
//
// Main runs one invocation in-process with injected streams and
// environment, so tests drive it exactly as a shell would. Each command has
// its own flag.FlagSet and -h help.
//
// Everything an agent reports is hostile input: every such string passes
// through clean before it reaches a terminal, and CSV cells are also
// neutralised against spreadsheet formula injection (see format.go).
package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/deskside/deskside/proto/wire"
)

// Exit codes. `deskside run` also exits with the remote command's code.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	// exitWarn and exitFail are `deskside diag` verdicts.
	exitWarn = 3
	exitFail = 4
	// exitTimeout and exitCanceled end `deskside run` when the command
	// timed out or was interrupted (as timeout(1) and a shell do).
	exitTimeout  = 124
	exitCanceled = 130
)

// App is the CLI with its build-time settings.
type App struct {
	// Version is printed by `deskside version` and sent as the user agent;
	// default "dev".
	Version string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Main runs one invocation of the CLI with the default App and returns the
// process exit code: 0 on success, 1 on errors, 2 on usage errors; `diag`
// exits 3 on warnings and 4 on failures, and `run` with the remote
// command's exit code (124 when it timed out, 130 when interrupted).
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	return (&App{}).Main(ctx, args, stdin, stdout, stderr, env)
}

// Main runs one invocation of the CLI; see the package function Main.
func (a *App) Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	e := &runEnv{
		ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: env,
		now: a.Now, version: a.Version,
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.version == "" {
		e.version = "dev"
	}
	if e.getenv == nil {
		e.getenv = func(string) string { return "" }
	}
	if e.stdin == nil {
		e.stdin = strings.NewReader("")
	}
	return e.dispatch(args)
}

// runEnv is one invocation: its streams, environment and clock.
type runEnv struct {
	ctx     context.Context
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	getenv  func(string) string
	now     func() time.Time
	version string
	cmd     *command // the command being run
	// signerMemo is the technician's signer once signerDone: one command
	// reads the key, and asks the relay for a certificate, once.
	signerMemo *techSigner
	signerDone bool
}

// command is one CLI command.
type command struct {
	name     string // as typed, e.g. "devices list"
	synopsis string // what follows the name in usage lines
	summary  string
	run      func(e *runEnv, args []string) error
}

// commands is every command, in the order usage lists them.
var commands = []command{
	{"login", "--relay HOST:PORT [--ca FILE | --ca-pin PIN] [--user NAME] [--password-stdin] [--totp CODE]", "sign in to a relay", (*runEnv).login},
	{"logout", "", "end the session and forget its token", (*runEnv).logout},
	{"whoami", "", "show who you are signed in as", (*runEnv).whoami},
	{"devices list", "[--hostname S] [--os S] [--online|--offline] [--all] [--json]", "list devices", (*runEnv).devicesList},
	{"devices show", "ID [--software] [--json]", "show a device's inventory and latest health", (*runEnv).devicesShow},
	{"devices ping", "ID", "measure the round trip to a connected agent", (*runEnv).devicesPing},
	{"devices refresh", "ID", "ask a connected agent to collect its inventory now", (*runEnv).devicesRefresh},
	{"devices revoke", "ID", "revoke a device's certificate and disconnect it (admin)", (*runEnv).devicesRevoke},
	{"devices policy", "ID [--mode attended|unattended|notice|group | --unattended | --no-unattended] [--max-sessions N], or --group NAME --mode M", "show or set a device's remote access policy (admin to set)", (*runEnv).devicesPolicy},
	{"devices group", "ID GROUP", "put a device in a group, whose check thresholds apply (admin)", (*runEnv).devicesGroup},
	{"diag", "ID [CHECK...] [--budget 5s] [-v] [--json]", "run diagnostic checks on a device (none named: a triage)", (*runEnv).diag},
	{"diag history", "ID [--limit N] [--report ID] [--json]", "list a device's stored diagnostics reports", (*runEnv).diagHistory},
	{"run", "(ID | --filter KEY=VALUE...) [--timeout 10m] [--max-output 10MiB] [--run-as USER] [--queue-offline] [--ticket CODE] (-- CMD [ARGS...] | --script FILE)",
		"run a command on a device or on many, streaming its output (tier2)", (*runEnv).run},
	{"action", "ID (kill PID | restart SERVICE | flush-dns | reboot [--delay 5m] [--message TEXT])",
		"kill a process, restart a service, flush DNS or reboot a device (tier2)", (*runEnv).action},
	{"session start", "ID [--view] [--ticket CODE]", "print a URL that opens the remote-desktop viewer for a device (tier2)", (*runEnv).sessionStart},
	{"group thresholds", "GROUP [--disk-warn PCT] [--disk-fail PCT] [...] [--reset]", "set the check thresholds of a device group (admin)", (*runEnv).groupThresholds},
	{"inventory history", "ID [--limit N] [--json]", "list a device's inventory changes", (*runEnv).inventoryHistory},
	{"inventory export", "[--format csv|json] [--hostname S] [--os S] [--online|--offline] [-o FILE]", "export the fleet's inventory", (*runEnv).inventoryExport},
	{"token create", "[--ttl 1h] [--uses 1] [-q]", "create an agent enrollment token (admin)", (*runEnv).tokenCreate},
	{"audit", "[--actor NAME] [--device ID] [--action A|A.*] [--since T] [--until T] [--before SEQ] [--limit N] [--json]", "list the audit log, newest first, filtered (admin)", (*runEnv).audit},
	{"audit verify", "", "check the audit log's keyed hash chain on the relay; exit 1 at the first bad record (admin)", (*runEnv).auditVerify},
	{"password", "[--password-stdin]", "change your own password (current, then the new one twice)", (*runEnv).passwordCmd},
	{"technician list", "[--json]", "list technicians: role, groups, state (admin)", (*runEnv).technicianList},
	{"technician add", "NAME --role tier1|tier2|tier3|admin [--groups a,b] [--password-stdin] [-q]", "add a technician, with a password shown once that they change at first sign-in (admin)", (*runEnv).technicianAdd},
	{"technician set", "NAME [--role ROLE] [--groups a,b | --all-groups]", "change a technician's role or groups (admin)", (*runEnv).technicianSet},
	{"technician disable", "NAME", "disable a technician: their sessions end at once (admin)", (*runEnv).technicianDisable},
	{"technician enable", "NAME", "let a disabled technician sign in again (admin)", (*runEnv).technicianEnable},
	{"technician delete", "NAME", "delete a technician; the audit log keeps their name (admin)", (*runEnv).technicianDelete},
	{"technician unlock", "NAME", "end a technician's lockout after wrong sign-ins (admin)", (*runEnv).technicianUnlock},
	{"technician reset-password", "NAME [--password-stdin] [-q]", "set a technician's password, generated and shown once (admin)", (*runEnv).technicianResetPassword},
	{"org init", "[FILE]", "create the organisation signing key on this machine (admin; never sent to the relay)", (*runEnv).orgInit},
	{"org publish", "--org-key FILE", "publish the organisation key on the relay, for agents to pin (admin)", (*runEnv).orgPublish},
	{"org rotate", "--org-key FILE --new-key NEWFILE", "create a new organisation key and hand over to it (admin)", (*runEnv).orgRotate},
	{"org show", "", "show the relay's organisation key chain, checked here", (*runEnv).orgShow},
	{"release keygen", "[FILE]", "create the agent release signing key on this machine (never the relay's, never the organisation key)", (*runEnv).releaseKeygen},
	{"release sign", "--key FILE --version vX.Y.Z [--os linux --arch amd64] [-o MANIFEST] EXECUTABLE", "sign an agent build for auto-update: writes EXECUTABLE.release", (*runEnv).releaseSign},
	{"release upload", "FILE [--manifest FILE.release]", "upload a signed agent build to the relay (admin)", (*runEnv).releaseUpload},
	{"release rollout", "--version vX.Y.Z [--os linux --arch amd64] (--percent N | --group G | --all)", "offer an uploaded release to agents, staged (admin)", (*runEnv).releaseRollout},
	{"release status", "", "show the rollout and each device's update state (admin)", (*runEnv).releaseStatus},
	{"technician keygen", "[--label TEXT]", "create your technician signing key (0600, next to the session file) and register it on the relay", (*runEnv).technicianKeygen},
	{"technician register", "[--label TEXT]", "register your technician key on the relay, for an admin to certify", (*runEnv).technicianRegister},
	{"technician certify", "NAME --org-key FILE --role tier1|tier2|tier3|admin [--fingerprint FP | --key PUBKEY] [--groups a,b] [--days N]", "certify a technician's registered key with the organisation key and publish it (admin)", (*runEnv).technicianCertify},
	{"technician install-cert", "FILE", "install a certificate file an admin made for your key (offline)", (*runEnv).technicianInstallCert},
	{"technician status", "", "show your key's state (none, waiting for an admin, certified, expired, revoked) and the next step", (*runEnv).technicianStatus},
	{"technician keys", "[NAME | --all]", "list technician keys on the relay and their state (others': admin)", (*runEnv).technicianKeys},
	{"technician delete-key", "FINGERPRINT [--technician NAME]", "remove a technician key from the relay", (*runEnv).technicianDeleteKey},
	{"technician revoke", "NAME --org-key FILE", "revoke a technician on every agent (admin)", (*runEnv).technicianRevoke},
	{"ticket new", "--subject TEXT [--device ID] [--requester NAME] [--email ADDR] [--priority P] [--category C] [--description TEXT]", "file a help-desk ticket and print its code", (*runEnv).ticketNew},
	{"ticket show", "CODE [--json]", "show a ticket, its SLA time left, what changed on its device and its timeline", (*runEnv).ticketShow},
	{"ticket list", "[--queue mine|tier|unassigned|all] [--status S,...|all] [--priority P,...] [--device ID] [--search WORDS] [--json]", "list a ticket queue, filtered or searched", (*runEnv).ticketList},
	{"ticket reply", "CODE TEXT... [--internal]", "reply to a ticket, or add an internal note", (*runEnv).ticketReply},
	{"ticket escalate", "CODE --tier N --reason TEXT", "move a ticket to another tier's queue, with a reason", (*runEnv).ticketEscalate},
	{"ticket claim", "CODE", "assign a ticket to yourself", (*runEnv).ticketClaim},
	{"ticket assign", "CODE (NAME | --none)", "assign a ticket to a technician, or to no one", (*runEnv).ticketAssign},
	{"ticket status", "CODE open|pending|resolved|closed [--reason TEXT]", "move a ticket along, or reopen it", (*runEnv).ticketStatus},
	{"ticket merge", "CODE --into CODE", "close a duplicate ticket with a link to the one it duplicates", (*runEnv).ticketMerge},
	{"ticket link", "CODE (--audit SEQ | --kind K --device ID [--since T])", "link a diagnostics run, command, action or session to a ticket", (*runEnv).ticketLink},
	{"ticket chat", "CODE TEXT...", "send a live chat line to the requester of a Get help ticket", (*runEnv).ticketChat},
	{"ticket attachment", "CODE NAME [-o FILE] [--force]", "save a file kept with a ticket (Get help screenshot, triage report)", (*runEnv).ticketAttachment},
	{"ticket sla", "[--set PRIORITY=FIRST/RESOLUTION...]", "show the SLA targets per priority, or set them (admin)", (*runEnv).ticketSLA},
	{"kb list", "[--category C] [--tag T] [--drafts | --published] [--ticket CODE] [--limit N] [--json]", "list knowledge-base articles", (*runEnv).kbList},
	{"kb show", "SLUG [--html] [--json]", "show an article, its state and linked tickets", (*runEnv).kbShow},
	{"kb search", "WORDS... [--published] [--category C] [--limit N] [--json]", "search the knowledge base, best match first", (*runEnv).kbSearch},
	{"kb new", "--title T --file F.md [--category C] [--tags a,b]", "create a draft article from Markdown", (*runEnv).kbNew},
	{"kb edit", "SLUG --file F.md [--title T] [--category C] [--tags a,b]", "replace an article's Markdown (and title, category, tags)", (*runEnv).kbEdit},
	{"kb publish", "SLUG", "publish an article for users' Get help page (tier2)", (*runEnv).kbPublish},
	{"kb unpublish", "SLUG", "make an article a draft again (tier2)", (*runEnv).kbUnpublish},
	{"kb delete", "SLUG", "delete an article (admin)", (*runEnv).kbDelete},
	{"kb link", "SLUG TICKET", "link an article to a ticket it helped with", (*runEnv).kbLink},
	{"kb unlink", "SLUG TICKET", "remove an article's link to a ticket", (*runEnv).kbUnlink},
	{"report", "[--from DATE] [--to DATE] [--csv SECTION | --json]", "print the help-desk report for a period, or one section as CSV (tier3)", (*runEnv).report},
	{"notify smtp show", "[--json]", "show the SMTP server ticket mail goes through, or that mail is off (admin)", (*runEnv).notifySMTPShow},
	{"notify smtp set", "--host H [--port 587] [--tls starttls|tls] --from ADDR [--reply-to ADDR] [--user U --password-stdin] | --off", "set the SMTP server for ticket mail, or turn mail off (admin)", (*runEnv).notifySMTPSet},
	{"notify smtp test", "ADDRESS", "send a test message now (admin)", (*runEnv).notifySMTPTest},
	{"notify webhook add", "URL [--secret-stdin]", "post ticket events to a URL, signed (admin)", (*runEnv).notifyWebhookAdd},
	{"notify webhook list", "", "list webhooks (admin)", (*runEnv).notifyWebhookList},
	{"notify webhook remove", "ID", "remove a webhook (admin)", (*runEnv).notifyWebhookRemove},
	{"notify webhook deliveries", "[--json]", "show the webhook delivery log, newest first (admin)", (*runEnv).notifyWebhookDeliveries},
	{"notify template show", "[NAME]", "show a mail template, or list their names (admin)", (*runEnv).notifyTemplateShow},
	{"notify template set", "NAME (--file F | --default)", "replace a mail template, or restore the default (admin)", (*runEnv).notifyTemplateSet},
	{"notify queue", "[--failed] [--sent] [--kind mail|webhook] [--json]", "list outgoing mail and webhook deliveries waiting or given up, with their last error (admin)", (*runEnv).notifyQueue},
	{"notify retry", "ID", "send a failed mail or webhook delivery again now (admin)", (*runEnv).notifyRetry},
	{"notify email", "TECHNICIAN ADDRESS", "set a technician's email for assignment and escalation mail (admin)", (*runEnv).notifyEmail},
	{"version", "", "print the version", (*runEnv).printVersion},
}

func isHelp(s string) bool {
	return s == "-h" || s == "-help" || s == "--help" || s == "help"
}

func (e *runEnv) dispatch(args []string) int {
	if len(args) == 0 {
		e.usage(e.stderr, "")
		return exitUsage
	}
	if isHelp(args[0]) {
		if len(args) > 1 {
			// "deskside help devices list" is "deskside devices list -h".
			return e.dispatch(append(args[1:len(args):len(args)], "-h"))
		}
		e.usage(e.stdout, "")
		return exitOK
	}
	// The longest matching name wins: "diag history D" is `diag history`,
	// "diag D" is `diag`.
	var match *command
	for i := range commands {
		c := &commands[i]
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slicesEqual(args[:len(words)], words) &&
			(match == nil || len(words) > len(strings.Fields(match.name))) {
			match = c
		}
	}
	if match != nil {
		e.cmd = match
		return e.exit(match.run(e, args[len(strings.Fields(match.name)):]))
	}
	group := args[0]
	if !isGroup(group) {
		fmt.Fprintf(e.stderr, "deskside: unknown command %q\n\n", clean(group))
		e.usage(e.stderr, "")
		return exitUsage
	}
	if len(args) > 1 && isHelp(args[1]) {
		e.usage(e.stdout, group)
		return exitOK
	}
	if len(args) > 1 {
		fmt.Fprintf(e.stderr, "deskside: unknown command %q\n\n", clean(group+" "+args[1]))
	} else {
		fmt.Fprintf(e.stderr, "deskside: %s needs a subcommand\n\n", group)
	}
	e.usage(e.stderr, group)
	return exitUsage
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func isGroup(word string) bool {
	for _, c := range commands {
		if g, _, ok := strings.Cut(c.name, " "); ok && g == word {
			return true
		}
	}
	return false
}

// usage prints the command list, or only the commands of group.
func (e *runEnv) usage(w io.Writer, group string) {
	if group == "" {
		fmt.Fprint(w, "deskside is the Deskside technician CLI.\n\nUsage:\n  deskside <command> [flags]\n\nCommands:\n")
	} else {
		fmt.Fprintf(w, "Usage:\n  deskside %s <command> [flags]\n\nCommands:\n", group)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	for _, c := range commands {
		if group != "" && !strings.HasPrefix(c.name, group+" ") {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\nRun `deskside <command> -h` for a command's flags.\n")
	if group == "" {
		fmt.Fprint(w, "\nEnvironment:\n"+
			"  DESKSIDE_CONFIG     session file (default <user config dir>/deskside/cli.json)\n"+
			"  DESKSIDE_PASSWORD   password for `deskside login`\n"+
			"  DESKSIDE_USER       technician name for `deskside login` (default admin)\n")
	}
}

// exit prints err and returns the exit code for it.
func (e *runEnv) exit(err error) int {
	var (
		ue *usageError
		ec *exitCodeError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ec):
		if ec.msg != "" {
			fmt.Fprintf(e.stderr, "deskside: %s\n", ec.msg)
		}
		return ec.code
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		if ue.msg != "" {
			fmt.Fprintf(e.stderr, "deskside: %s\n\n", ue.msg)
		}
		if ue.fs != nil {
			ue.fs.Usage()
		}
		return exitUsage
	default:
		fmt.Fprintf(e.stderr, "deskside: %s\n", err)
		return exitError
	}
}

// exitCodeError ends a command with a particular exit code (a remote
// command's, a diagnostics verdict's), printing msg first when it is set.
type exitCodeError struct {
	code int
	msg  string
}

func (x *exitCodeError) Error() string {
	if x.msg != "" {
		return x.msg
	}
	return fmt.Sprintf("exit code %d", x.code)
}

// exitWith returns an error that makes the CLI exit with code, silently.
func exitWith(code int) error {
	if code == exitOK {
		return nil
	}
	return &exitCodeError{code: code}
}

// usageError is a mistake in the command line. The flag package has
// already printed its own when fs is nil.
type usageError struct {
	fs  *flag.FlagSet
	msg string
}

func (u *usageError) Error() string { return u.msg }

func errUsage(fs *flag.FlagSet, format string, a ...any) error {
	return &usageError{fs: fs, msg: fmt.Sprintf(format, a...)}
}

// flags returns the FlagSet of a command with its -h text.
func (e *runEnv) flags(name, help string) *flag.FlagSet {
	synopsis := ""
	if e.cmd != nil && e.cmd.name == name {
		synopsis = e.cmd.synopsis
	}
	fs := flag.NewFlagSet("deskside "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage:\n  deskside %s %s\n\n%s\n", name, synopsis, strings.TrimSpace(help))
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses flags that may come before, between or after positional
// arguments ("devices show ID --json"), and returns the positionals.
// Everything after "--" is positional.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	pos, after, _, err := parseDash(fs, args)
	return append(pos, after...), err
}

// parseDash is parse that keeps apart the positionals before "--" and
// those after it (dash reports whether there was a "--").
func parseDash(fs *flag.FlagSet, args []string) (pos, after []string, dash bool, err error) {
	for {
		// A key fingerprint may start with "-" (base64url): it is an
		// argument, not a flag, unless a flag before it takes a value.
		cut := keyArg(fs, args)
		head := args
		if cut >= 0 {
			head = args[:cut]
		}
		p, rest, d, err := parseFlags(fs, head)
		pos = append(pos, p...)
		if err != nil || d || cut < 0 {
			return pos, rest, d, err
		}
		pos = append(pos, args[cut])
		args = args[cut+1:]
	}
}

// keyArg returns the index of the first argument before "--" that has the
// form of a key fingerprint or CA pin and starts with "-", -1 if none.
func keyArg(fs *flag.FlagSet, args []string) int {
	for i, a := range args {
		if a == "--" {
			return -1
		}
		if _, err := wire.ParsePin(a); !strings.HasPrefix(a, "-") || err != nil {
			continue
		}
		if i > 0 && takesValue(fs, args[i-1]) {
			continue
		}
		return i
	}
	return -1
}

// takesValue reports whether arg is a flag of fs that takes the next
// argument as its value.
func takesValue(fs *flag.FlagSet, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if !strings.HasPrefix(arg, "-") || strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// parseFlags parses flags and positionals in any order up to "--".
func parseFlags(fs *flag.FlagSet, args []string) (pos, after []string, dash bool, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, false, err
			}
			return nil, nil, false, &usageError{}
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return pos, rest, true, nil
		}
		if len(rest) == 0 {
			return pos, nil, false, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseID parses a command that takes exactly one device ID.
func parseID(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return "", err
	}
	switch {
	case len(pos) == 0:
		return "", errUsage(fs, "a device ID is required (see `deskside devices list`)")
	case len(pos) > 1:
		return "", errUsage(fs, "one device ID expected, got %d arguments", len(pos))
	}
	return pos[0], nil
}

// noArgs parses a command that takes no positional arguments.
func noArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return errUsage(fs, "unexpected argument %q", clean(pos[0]))
	}
	return nil
}

// output returns a buffered stdout; the command returns its Flush error so
// a failed write (closed pipe, full disk) is reported, not swallowed.
func (e *runEnv) output() *bufio.Writer { return bufio.NewWriter(e.stdout) }

// rpcTimeout bounds each unary call. The relay itself gives up on an agent
// after 30 s (ping, refresh), so this is longer.
const rpcTimeout = 60 * time.Second

func (e *runEnv) rpcContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(e.ctx, rpcTimeout)
}

func (e *runEnv) printVersion(args []string) error {
	fs := e.flags("version", "Prints the version of this deskside binary.")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	_, err := fmt.Fprintf(e.stdout, "deskside %s (%s)\n", e.version, platform())
	return err
}

// isTerminalWriter reports whether w is an interactive terminal.
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && termIsTerminal(f)
}

// isTerminal reports whether r is an interactive terminal.
func isTerminal(r io.Reader) (*os.File, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return nil, false
	}
	return f, termIsTerminal(f)
}
