package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

// Limits of `deskside run`, the relay's.
const (
	maxRunTimeout   = 24 * time.Hour
	maxRunOutput    = 100 << 20
	maxCommandLine  = 64 << 10
	maxScriptFile   = 1 << 20
	maxQueueTTL     = 7 * 24 * time.Hour
	defaultRunOut   = 10 << 20
	fanoutLineLimit = 64 << 10 // a longer line is printed in pieces
)

const runHelp = `
Runs a command on one device, or on every device a filter matches, and
streams its output as it comes (role tier2 or above). The command runs
through the device's shell (/bin/sh -c; cmd.exe /C on Windows).

The command follows "--". Several arguments are joined into one command
line, each quoted for a POSIX shell when it needs it:
  deskside run D -- echo "a b"             runs  echo 'a b'
A single argument is sent as it is, so it can hold pipes and redirections
(and is how to write a cmd.exe command line for a Windows device):
  deskside run D -- 'df -h | sort -k5 -r'
--script FILE sends FILE ("-": standard input) as a script instead, run by
the interpreter of its #! line (default /bin/sh; PowerShell on Windows).

One device: the command's standard output goes to standard output and its
standard error to standard error, byte for byte (on a terminal, escape
sequences and other control characters are removed). deskside exits with
the command's exit code; 124 when it timed out (--timeout), 130 when
interrupted, 1 when it could not run or the device is offline (also when
the command is queued). Ctrl-C ends the command and its child processes
on the device.

Several devices (--filter KEY=VALUE, repeatable; all must match):
  hostname=S os=S user=S model=S   case-insensitive substring
  query=S                          substring of hostname, user, OS, model or ID
  online, offline, online=true|false
Each line of output is printed as it completes, prefixed with the device's
hostname (standard error lines on standard error); then a table of results
per device and the totals. deskside exits 0 only when the command succeeded
on every device, 130 when interrupted, else 1.

An offline device is reported as such; with --queue-offline the command is
queued instead and runs when the device reconnects within --queue-ttl. The
outcome of a queued command goes to the audit log.

Examples:
  deskside run dev-0123 -- uname -a
  deskside run dev-0123 --timeout 30s -- journalctl -p err -b --no-pager
  deskside run --filter os=ubuntu --filter online -- apt-get -s upgrade
  deskside run --filter hostname=lab- --queue-offline --script fix.sh`

// byteSize is a size flag: "10MiB", "512k", "1048576".
type byteSize uint64

func (b *byteSize) String() string { return formatBytes(uint64(*b)) }

func (b *byteSize) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

// parseSize parses a byte count with an optional unit: B, K/KiB, M/MiB,
// G/GiB (powers of 1024), KB, MB, GB (powers of 1000).
func parseSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 10MiB, 512KiB, 1048576)", s)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "ki": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mi": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gi": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	}[strings.ToLower(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (use B, KiB, MiB or GiB)", s, unit)
	}
	v *= mult
	if v >= 1<<63 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return uint64(v), nil
}

// shellJoin joins argv into one POSIX shell command line, single-quoting
// every argument that holds anything but obviously safe characters.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = posixQuote(a)
	}
	return strings.Join(out, " ")
}

// posixQuote quotes s for a POSIX shell unless it is made only of
// characters no shell treats specially (no globs, no tilde, no $).
func posixQuote(s string) string {
	safe := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r))
	}) < 0
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// parseFilters turns --filter KEY=VALUE items into a device filter.
func parseFilters(items []string) (*desksidev1.ListDevicesRequest, error) {
	f := &desksidev1.ListDevicesRequest{}
	seen := map[string]bool{}
	for _, it := range items {
		key, val, hasVal := strings.Cut(strings.TrimSpace(it), "=")
		key = strings.ToLower(strings.TrimSpace(key))
		val = strings.TrimSpace(val)
		if key == "offline" && !hasVal {
			key, val, hasVal = "online", "false", true
		}
		if seen[key] {
			return nil, fmt.Errorf("--filter %s is given twice", clean(key))
		}
		seen[key] = true
		var dst *string
		switch key {
		case "hostname", "host":
			dst = &f.Hostname
		case "os":
			dst = &f.Os
		case "user":
			dst = &f.User
		case "model":
			dst = &f.Model
		case "query", "q":
			dst = &f.Query
		case "online":
			on := true
			if hasVal {
				b, err := strconv.ParseBool(strings.ToLower(strings.NewReplacer("yes", "true", "no", "false").Replace(val)))
				if err != nil {
					return nil, fmt.Errorf("--filter online=%s: expected true or false", clean(val))
				}
				on = b
			}
			f.Online = proto.Bool(on)
			continue
		case "group":
			return nil, errors.New("--filter group=: the relay cannot select devices by group yet; " +
				"filter by hostname, os, user, model, query or online")
		case "id", "device":
			return nil, errors.New("--filter id=: to run on one device, give its ID: deskside run DEVICE -- CMD")
		default:
			return nil, fmt.Errorf("--filter %q: unknown key; use hostname=, os=, user=, model=, query= or online", clean(it))
		}
		if !hasVal || val == "" {
			return nil, fmt.Errorf("--filter %s= needs a value", key)
		}
		*dst = val
	}
	return f, nil
}

func (e *runEnv) run(args []string) error {
	fs := e.flags("run", runHelp)
	timeout := fs.Duration("timeout", 10*time.Minute, "end the command after this long (at most 24h)")
	maxOut := byteSize(defaultRunOut)
	fs.Var(&maxOut, "max-output", "keep at most `SIZE` of output, stdout and stderr together (at most 100MiB)")
	runAs := fs.String("run-as", "", "local `USER` to run as (default: the agent's service account)")
	script := fs.String("script", "", "send `FILE` as a script (\"-\": standard input) instead of a command line")
	var filters stringList
	fs.Var(&filters, "filter", "run on every device matching `KEY=VALUE` (repeatable; see above)")
	queue := fs.Bool("queue-offline", false, "queue the command for offline devices, to run when they reconnect")
	queueTTL := fs.Duration("queue-ttl", 24*time.Hour, "with --queue-offline, how long a queued command waits (at most 168h)")
	ticket := fs.String("ticket", "", "link the command to ticket `CODE` when it has run (one device)")
	pos, cmdArgs, _, err := parseDash(fs, args)
	if err != nil {
		return err
	}
	queueTTLSet := false
	fs.Visit(func(f *flag.Flag) { queueTTLSet = queueTTLSet || f.Name == "queue-ttl" })

	req := &desksidev1.RunCommandRequest{QueueOffline: *queue}
	switch {
	case len(filters) > 0 && len(pos) > 0:
		return errUsage(fs, "give a device ID or --filter, not both")
	case len(filters) > 0:
		if req.Filter, err = parseFilters(filters); err != nil {
			return errUsage(fs, "%v", err)
		}
	case len(pos) == 0:
		return errUsage(fs, "a device ID (or --filter) is required: deskside run DEVICE -- CMD [ARGS...]")
	case len(pos) > 1:
		return errUsage(fs, "put the command after \"--\": deskside run %s -- %s", clean(pos[0]), clean(shellJoin(pos[1:])))
	default:
		req.DeviceId = pos[0]
	}
	if *timeout <= 0 || *timeout > maxRunTimeout {
		return errUsage(fs, "--timeout must be between 1s and %s", maxRunTimeout)
	}
	if maxOut == 0 || maxOut > maxRunOutput {
		return errUsage(fs, "--max-output must be between 1 byte and 100MiB")
	}
	if *ticket != "" && req.DeviceId == "" {
		return errUsage(fs, "--ticket goes with one device ID, not --filter")
	}
	if queueTTLSet && !*queue {
		return errUsage(fs, "--queue-ttl goes with --queue-offline")
	}
	if *queue {
		if *queueTTL <= 0 || *queueTTL > maxQueueTTL {
			return errUsage(fs, "--queue-ttl must be between 1s and %s", maxQueueTTL)
		}
		req.QueueTtl = durationpb.New(*queueTTL)
	}
	rc := &desksidev1.RunCommand{Timeout: durationpb.New(*timeout), MaxOutputBytes: uint64(maxOut), RunAs: *runAs}
	switch {
	case *script != "" && len(cmdArgs) > 0:
		return errUsage(fs, "give a command after \"--\" or --script, not both")
	case *script != "":
		body, err := e.readScript(*script)
		if err != nil {
			return err
		}
		rc.Script = body
	case len(cmdArgs) == 0:
		return errUsage(fs, "a command is required after \"--\": deskside run DEVICE -- CMD [ARGS...]")
	case len(cmdArgs) == 1:
		rc.Command = cmdArgs[0]
	default:
		rc.Command = shellJoin(cmdArgs)
	}
	if rc.Command != "" && strings.TrimSpace(rc.Command) == "" {
		return errUsage(fs, "the command is empty")
	}
	if len(rc.Command) > maxCommandLine {
		return errUsage(fs, "the command line is %d bytes; the limit is %d (send a longer one with --script)", len(rc.Command), maxCommandLine)
	}
	req.Command = rc

	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	// No deadline: the command's own --timeout bounds it; Ctrl-C cancels
	// the call, which makes the relay end the command on the device.
	ctx, err := e.signRun(c, req)
	if err != nil {
		return err
	}
	// The relay's audit record of the command is at or after start (with
	// some room for the two clocks).
	start := e.now().Add(-time.Minute)
	stream, err := c.client.RunCommand(ctx, req)
	if err != nil {
		return e.runError(c, err)
	}
	if req.DeviceId != "" {
		err := e.runOne(c, stream, req.DeviceId, *timeout, uint64(maxOut))
		if *ticket != "" {
			e.linkRun(c, *ticket, "command", req.DeviceId, start)
		}
		return err
	}
	return e.runFanout(c, stream)
}

// readScript reads a --script file ("-": standard input).
func (e *runEnv) readScript(path string) (string, error) {
	var r io.Reader
	if path == "-" {
		r = e.stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("read --script: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxScriptFile+1))
	if err != nil {
		return "", fmt.Errorf("read --script: %w", err)
	}
	switch {
	case len(b) > maxScriptFile:
		return "", fmt.Errorf("--script %s is larger than the limit of %s", path, formatBytes(maxScriptFile))
	case len(bytes.TrimSpace(b)) == 0:
		return "", fmt.Errorf("--script %s is empty", path)
	case !utf8.Valid(b):
		return "", fmt.Errorf("--script %s is not UTF-8 text", path)
	}
	return string(b), nil
}

// runGoneNext is what to do when the relay went away during a command.
const runGoneNext = "How the command ended is unknown: check the relay is back with `deskside whoami`, then find the outcome in `deskside audit`."

// runError explains a failed RunCommand stream; an interrupted one ends
// with "cancelled" and exit code 130.
func (e *runEnv) runError(c *conn, err error) error {
	if e.ctx.Err() != nil || status.Code(err) == codes.Canceled {
		fmt.Fprintln(e.stderr, "cancelled")
		return exitWith(exitCanceled)
	}
	if status.Code(err) == codes.Unavailable {
		if gone := c.relayGone("while the command ran", runGoneNext); gone != nil {
			return gone
		}
	}
	return c.explain(err)
}

// termWriter writes command output to a terminal with escape sequences
// and control characters other than newlines and tabs removed. It holds
// back an incomplete UTF-8 sequence at the end of a chunk until the next.
type termWriter struct {
	w    io.Writer
	pend []byte
}

func (t *termWriter) Write(p []byte) (int, error) {
	buf := append(t.pend, p...)
	t.pend = nil
	// Keep a trailing partial rune for the next chunk.
	if k := partialRune(buf); k > 0 {
		t.pend = append([]byte(nil), buf[len(buf)-k:]...)
		buf = buf[:len(buf)-k]
	}
	if _, err := io.WriteString(t.w, safeText(buf)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what was held back.
func (t *termWriter) Flush() error {
	if len(t.pend) == 0 {
		return nil
	}
	s := safeText(t.pend)
	t.pend = nil
	_, err := io.WriteString(t.w, s)
	return err
}

// partialRune returns how many bytes at the end of b start a UTF-8
// sequence that is not complete yet.
func partialRune(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < 0x80 {
			return 0
		}
		if utf8.RuneStart(c) {
			need := 0
			switch {
			case c >= 0xF0:
				need = 4
			case c >= 0xE0:
				need = 3
			case c >= 0xC0:
				need = 2
			}
			if need > k {
				return k
			}
			return 0
		}
	}
	return 0
}

// safeText is b cleaned for a terminal, keeping newlines and tabs.
func safeText(b []byte) string {
	var sb strings.Builder
	for i, line := range strings.Split(string(b), "\n") {
		if i > 0 {
			sb.WriteByte('\n')
		}
		line = strings.TrimSuffix(line, "\r")
		for j, part := range strings.Split(line, "\t") {
			if j > 0 {
				sb.WriteByte('\t')
			}
			sb.WriteString(wire.CleanString(part, len(part)+1))
		}
	}
	return sb.String()
}

// runOne streams one device's command and returns its exit code.
func (e *runEnv) runOne(c *conn, stream desksidev1.ConsoleService_RunCommandClient, id string, timeout time.Duration, maxOut uint64) error {
	var stdout, stderr io.Writer = e.stdout, e.stderr
	var flush []*termWriter
	if isTerminalWriter(e.stdout) {
		tw := &termWriter{w: e.stdout}
		stdout, flush = tw, append(flush, tw)
	}
	if isTerminalWriter(e.stderr) {
		tw := &termWriter{w: e.stderr}
		stderr, flush = tw, append(flush, tw)
	}
	flushAll := func() {
		for _, tw := range flush {
			tw.Flush()
		}
	}
	var (
		exit    *desksidev1.CommandExit
		offline *desksidev1.DeviceOffline
		written uint64
	)
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			flushAll()
			return e.runError(c, err)
		}
		switch ev := m.GetEvent().(type) {
		case *desksidev1.RunCommandResponse_Output:
			data := ev.Output.GetData()
			written += uint64(len(data))
			w := stdout
			if ev.Output.GetStream() == desksidev1.CommandStream_COMMAND_STREAM_STDERR {
				w = stderr
			}
			if _, err := w.Write(data); err != nil {
				// Standard output is gone (a closed pipe): stop the command.
				return fmt.Errorf("write the output: %w", err)
			}
		case *desksidev1.RunCommandResponse_Exit:
			exit = ev.Exit
		case *desksidev1.RunCommandResponse_Offline:
			offline = ev.Offline
		}
	}
	flushAll()
	name := clean(id)
	switch {
	case offline != nil && offline.GetQueued():
		return fmt.Errorf("%s is offline: the command is queued and runs if it reconnects by %s; its outcome will be in the audit log (`deskside audit`)",
			name, fmtTime(offline.GetQueuedUntil().AsTime()))
	case offline != nil:
		return fmt.Errorf("%s is offline: the command did not run (pass --queue-offline to run it when the device reconnects)", name)
	case exit == nil:
		return fmt.Errorf("%s: the relay ended the command without an exit status", name)
	}
	if exit.GetTruncated() {
		fmt.Fprintf(e.stderr, "deskside: output truncated: the command wrote more than %s (--max-output); the rest was discarded\n",
			formatBytes(maxOut))
	}
	code := exit.GetExitCode()
	switch {
	case exit.GetCanceled():
		fmt.Fprintln(e.stderr, "cancelled")
		return exitWith(exitCanceled)
	case exit.GetTimedOut():
		return &exitCodeError{code: exitTimeout, msg: fmt.Sprintf("the command timed out after %s (--timeout) and was ended", timeout)}
	case exit.GetError() != "":
		// "device … disconnected" is also what a stopping relay says.
		if gone := c.relayGone("while the command ran", runGoneNext); gone != nil {
			return gone
		}
		return fmt.Errorf("%s: the command could not run: %s", name, clean(exit.GetError()))
	case code < 0:
		return fmt.Errorf("%s: the command ended without an exit status (killed by a signal?)", name)
	case code > 255:
		return &exitCodeError{code: exitError, msg: fmt.Sprintf("the command exited with code %d", code)}
	}
	return exitWith(int(code))
}

// fanDevice is one device of a fan-out.
type fanDevice struct {
	id, host string
	exit     *desksidev1.CommandExit
	offline  *desksidev1.DeviceOffline
	bytes    uint64
	pend     [3][]byte // partial lines per stream
}

// label is how the device's output lines are prefixed.
func (d *fanDevice) label() string {
	if h := strings.TrimSpace(short(d.host, 64)); h != "" {
		return h
	}
	return short(d.id, 64)
}

// fanStream maps an output chunk's stream to an index of fanDevice.pend.
func fanStream(s desksidev1.CommandStream) int {
	if s == desksidev1.CommandStream_COMMAND_STREAM_STDERR {
		return 2
	}
	return 1
}

// lines returns the complete lines of d's pending output on stream s (all
// of it when final), each prefixed and cleaned, and keeps the rest.
func (d *fanDevice) lines(s int, final bool) []byte {
	var out []byte
	buf := d.pend[s]
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 && len(buf) > fanoutLineLimit {
			i = fanoutLineLimit
			for i > 0 && !utf8.RuneStart(buf[i]) {
				i--
			}
		}
		if i < 0 {
			break
		}
		out = d.appendLine(out, buf[:i])
		if i < len(buf) && buf[i] == '\n' {
			i++
		}
		buf = buf[i:]
	}
	if final && len(buf) > 0 {
		out = d.appendLine(out, buf)
		buf = nil
	}
	d.pend[s] = append(d.pend[s][:0], buf...)
	return out
}

func (d *fanDevice) appendLine(out, line []byte) []byte {
	s := strings.TrimSuffix(string(line), "\r")
	out = append(out, d.label()...)
	out = append(out, ": "...)
	out = append(out, wire.CleanString(s, len(s)+1)...)
	return append(out, '\n')
}

// result is the device's RESULT cell.
func (d *fanDevice) result(canceled bool) string {
	switch {
	case d.offline != nil && d.offline.GetQueued():
		return "queued"
	case d.offline != nil:
		return "offline"
	case d.exit == nil && canceled:
		return "cancelled"
	case d.exit == nil:
		return "no result"
	case d.exit.GetCanceled():
		return "cancelled"
	case d.exit.GetTimedOut():
		return "timed out"
	case d.exit.GetError() != "":
		return "error: " + d.exit.GetError()
	case d.exit.GetExitCode() == 0:
		return "ok"
	case d.exit.GetExitCode() < 0:
		return "killed"
	}
	return fmt.Sprintf("exit %d", d.exit.GetExitCode())
}

// runFanout streams a command on several devices: prefixed lines as they
// complete, then a table of results and the totals.
func (e *runEnv) runFanout(c *conn, stream desksidev1.ConsoleService_RunCommandClient) error {
	devs := map[string]*fanDevice{}
	get := func(m *desksidev1.RunCommandResponse) *fanDevice {
		d := devs[m.GetDeviceId()]
		if d == nil {
			d = &fanDevice{id: m.GetDeviceId()}
			devs[d.id] = d
		}
		if m.GetHostname() != "" {
			d.host = m.GetHostname()
		}
		return d
	}
	writers := [3]io.Writer{nil, e.stdout, e.stderr}
	flushDevice := func(d *fanDevice) {
		for s := 1; s <= 2; s++ {
			if b := d.lines(s, true); len(b) > 0 {
				writers[s].Write(b)
			}
		}
	}
	var (
		sum      *desksidev1.CommandSummary
		canceled bool
		failure  error
	)
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if e.ctx.Err() != nil || status.Code(err) == codes.Canceled {
				canceled = true
			} else {
				failure = e.runError(c, err)
			}
			break
		}
		switch ev := m.GetEvent().(type) {
		case *desksidev1.RunCommandResponse_Output:
			d := get(m)
			data := ev.Output.GetData()
			d.bytes += uint64(len(data))
			s := fanStream(ev.Output.GetStream())
			d.pend[s] = append(d.pend[s], data...)
			if b := d.lines(s, false); len(b) > 0 {
				if _, err := writers[s].Write(b); err != nil {
					return fmt.Errorf("write the output: %w", err)
				}
			}
		case *desksidev1.RunCommandResponse_Exit:
			d := get(m)
			d.exit = ev.Exit
			flushDevice(d)
		case *desksidev1.RunCommandResponse_Offline:
			get(m).offline = ev.Offline
		case *desksidev1.RunCommandResponse_Summary:
			sum = ev.Summary
		}
	}
	list := make([]*fanDevice, 0, len(devs))
	for _, d := range devs {
		flushDevice(d)
		list = append(list, d)
	}
	if failure != nil && len(list) == 0 {
		return failure
	}
	slices.SortFunc(list, func(a, b *fanDevice) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.host), strings.ToLower(b.host)), cmp.Compare(a.id, b.id))
	})

	out := e.output()
	if len(list) > 0 {
		fmt.Fprintln(out)
		rows := make([][]string, 0, len(list))
		var queuedUntil time.Time
		for _, d := range list {
			size := "-"
			if d.offline == nil {
				size = formatBytes(max(d.bytes, d.exit.GetOutputBytes()))
				if d.exit.GetTruncated() {
					size += " (truncated)"
				}
			}
			if t := d.offline.GetQueuedUntil(); t != nil && d.offline.GetQueued() {
				queuedUntil = t.AsTime()
			}
			rows = append(rows, []string{d.host, d.id, d.result(canceled), size})
		}
		if err := table(out, "", []string{"HOSTNAME", "DEVICE", "RESULT", "OUTPUT"}, rows); err != nil {
			return err
		}
		if !queuedUntil.IsZero() {
			fmt.Fprintf(out, "\nQueued commands run when their device reconnects by %s; their outcome goes to the audit log.\n", fmtTime(queuedUntil))
		}
	}
	if sum == nil {
		sum = localSummary(list, canceled)
	}
	fmt.Fprintf(out, "\n%s\n", summaryLine(sum))
	if err := out.Flush(); err != nil {
		return err
	}
	switch {
	case canceled:
		fmt.Fprintln(e.stderr, "cancelled")
		return exitWith(exitCanceled)
	case failure != nil:
		return failure
	case sum.GetDevices() > 0 && sum.GetSucceeded() == sum.GetDevices():
		return nil
	}
	return exitWith(exitError)
}

// localSummary counts the results when the relay sent no summary (the
// call was interrupted or failed).
func localSummary(list []*fanDevice, canceled bool) *desksidev1.CommandSummary {
	s := &desksidev1.CommandSummary{Devices: uint32(len(list))}
	for _, d := range list {
		switch d.result(canceled) {
		case "ok":
			s.Succeeded++
		case "queued":
			s.Queued++
		case "offline":
			s.Offline++
		case "cancelled":
			s.Canceled++
		case "timed out":
			s.TimedOut++
		default:
			s.Failed++
		}
	}
	return s
}

// summaryLine renders the totals: "3 devices: 2 succeeded, 1 failed".
func summaryLine(s *desksidev1.CommandSummary) string {
	parts := []string{fmt.Sprintf("%d succeeded", s.GetSucceeded())}
	for _, p := range []struct {
		n    uint32
		what string
	}{
		{s.GetFailed(), "failed"}, {s.GetTimedOut(), "timed out"}, {s.GetOffline(), "offline"},
		{s.GetQueued(), "queued"}, {s.GetCanceled(), "cancelled"},
	} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	plural := "s"
	if s.GetDevices() == 1 {
		plural = ""
	}
	return fmt.Sprintf("%d device%s: %s", s.GetDevices(), plural, strings.Join(parts, ", "))
}

// signRun seals the command's envelope over the devices it targets: the
// device, or those the filter matches now (a device that matches later
// is not in the signed list and refuses).
func (e *runEnv) signRun(c *conn, req *desksidev1.RunCommandRequest) (context.Context, error) {
	if s, err := e.signer(); err != nil || s == nil {
		return e.ctx, err
	}
	ids := []string{req.GetDeviceId()}
	if req.GetFilter() != nil {
		ids = nil
		fr := proto.Clone(req.GetFilter()).(*desksidev1.ListDevicesRequest)
		for {
			ctx, cancel := e.rpcContext()
			resp, err := c.client.ListDevices(ctx, fr)
			cancel()
			if err != nil {
				return nil, c.explain(err)
			}
			for _, d := range resp.GetDevices() {
				ids = append(ids, d.GetId())
			}
			if resp.GetNextPageToken() == "" {
				break
			}
			fr.PageToken = resp.GetNextPageToken()
		}
		if len(ids) == 0 {
			return nil, errors.New("no device matches the filter; check it with deskside devices list")
		}
	}
	return e.sign(e.ctx, req.GetCommand(), ids)
}
