package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

// Limits of `deskside diag`, the relay's.
const (
	minCheckBudget = time.Second
	maxCheckBudget = 60 * time.Second
)

var diagHelp = `
Runs diagnostic checks on a connected device and prints one line per check:
its status (PASS, WARN, FAIL, or N/A when the check cannot run there), its
name and a summary. For each check that warns or fails, the evidence behind
the verdict and a hint follow; the last line is the overall verdict. The
relay stores the report (see ` + "`deskside diag history`" + `).

With no CHECK, every check runs (a triage). Checks:
` + checkList + `
The thresholds are the agent's defaults, or those of the device's group
(` + "`deskside devices group`, `deskside group thresholds`" + `).

Exit status: 0 when every check passed or could not run (N/A), 3 when the
worst result is a warning, 4 when a check failed, 1 on errors. --json keeps
these exit codes. Status colours are used only on a terminal, and never
when NO_COLOR is set.

Examples:
  deskside diag dev-0123
  deskside diag dev-0123 network.dns network.https --budget 10s`

// checkList is wire.CheckNames for help texts, a few to a line.
var checkList = func() string {
	var b strings.Builder
	line := 0
	for _, n := range wire.CheckNames {
		if line > 0 && line+1+len(n) > 72 {
			b.WriteByte('\n')
			line = 0
		}
		if line == 0 {
			b.WriteString("  ")
			line = 2
		} else {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(n)
		line += len(n)
	}
	return b.String()
}()

// verdictCode is the exit code for a report: failures beat warnings, and
// checks that could not run count as passing.
func verdictCode(rep *desksidev1.CheckReport) int {
	worst := rep.GetOverall()
	for _, r := range rep.GetResults() {
		if statusRank(r.GetStatus()) > statusRank(worst) {
			worst = r.GetStatus()
		}
	}
	switch worst {
	case desksidev1.CheckStatus_CHECK_STATUS_FAIL:
		return exitFail
	case desksidev1.CheckStatus_CHECK_STATUS_WARN:
		return exitWarn
	}
	return exitOK
}

// statusRank orders statuses as the agent does for the overall verdict:
// FAIL > WARN > N/A > PASS.
func statusRank(s desksidev1.CheckStatus) int {
	switch s {
	case desksidev1.CheckStatus_CHECK_STATUS_PASS:
		return 1
	case desksidev1.CheckStatus_CHECK_STATUS_UNAVAILABLE:
		return 2
	case desksidev1.CheckStatus_CHECK_STATUS_WARN:
		return 3
	case desksidev1.CheckStatus_CHECK_STATUS_FAIL:
		return 4
	}
	return 0
}

// statusLabel is how a status is printed: PASS, WARN, FAIL, N/A.
func statusLabel(s desksidev1.CheckStatus) string {
	switch s {
	case desksidev1.CheckStatus_CHECK_STATUS_PASS:
		return "PASS"
	case desksidev1.CheckStatus_CHECK_STATUS_WARN:
		return "WARN"
	case desksidev1.CheckStatus_CHECK_STATUS_FAIL:
		return "FAIL"
	case desksidev1.CheckStatus_CHECK_STATUS_UNAVAILABLE:
		return "N/A"
	}
	return "?"
}

// useColor reports whether output to w may be coloured: w is a terminal,
// NO_COLOR is unset (https://no-color.org) and TERM is not "dumb".
func (e *runEnv) useColor(w io.Writer) bool {
	return e.getenv("NO_COLOR") == "" && e.getenv("TERM") != "dumb" && isTerminalWriter(w)
}

// paint wraps s in the colour of status s when color is on.
func paint(color bool, st desksidev1.CheckStatus, s string) string {
	if !color {
		return s
	}
	var code string
	switch st {
	case desksidev1.CheckStatus_CHECK_STATUS_PASS:
		code = "32"
	case desksidev1.CheckStatus_CHECK_STATUS_WARN:
		code = "33"
	case desksidev1.CheckStatus_CHECK_STATUS_FAIL:
		code = "1;31"
	case desksidev1.CheckStatus_CHECK_STATUS_UNAVAILABLE:
		code = "2"
	default:
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// padRight pads s with spaces to n runes.
func padRight(s string, n int) string {
	if k := utf8.RuneCountInString(s); k < n {
		return s + strings.Repeat(" ", n-k)
	}
	return s
}

// writeReport renders a check report: the status table, the details of
// the checks that did not pass (of all with verbose), and the verdict.
// Every agent-reported string goes through clean.
func writeReport(w io.Writer, rep *desksidev1.CheckReport, color, verbose bool, saved string) {
	results := rep.GetResults()
	if len(results) == 0 {
		fmt.Fprintln(w, "The agent returned no results.")
	} else {
		names := make([]string, len(results))
		width := len("CHECK")
		for i, r := range results {
			names[i] = short(r.GetName(), 40)
			width = max(width, utf8.RuneCountInString(names[i]))
		}
		fmt.Fprintf(w, "%s  %s  %s\n", padRight("STATUS", 6), padRight("CHECK", width), "SUMMARY")
		for i, r := range results {
			st := r.GetStatus()
			// Padded before it is coloured, so the columns line up.
			fmt.Fprintf(w, "%s  %s  %s\n", paint(color, st, padRight(statusLabel(st), 6)), padRight(names[i], width),
				strings.TrimSpace(clean(r.GetSummary())))
		}
		for i, r := range results {
			st := r.GetStatus()
			if !verbose && st != desksidev1.CheckStatus_CHECK_STATUS_WARN && st != desksidev1.CheckStatus_CHECK_STATUS_FAIL {
				continue
			}
			if len(r.GetEvidence()) == 0 && r.GetHint() == "" {
				continue
			}
			fmt.Fprintf(w, "\n%s: %s\n", names[i], paint(color, st, statusLabel(st)))
			pairs := make([][2]string, 0, len(r.GetEvidence())+1)
			for _, ev := range r.GetEvidence() {
				pairs = append(pairs, [2]string{short(ev.GetKey(), 40), ev.GetValue()})
			}
			kv(w, pairs)
			if h := strings.TrimSpace(clean(r.GetHint())); h != "" {
				fmt.Fprintf(w, "  Hint: %s\n", h)
			}
		}
	}
	overall := rep.GetOverall()
	if overall == desksidev1.CheckStatus_CHECK_STATUS_UNSPECIFIED {
		for _, r := range results {
			if statusRank(r.GetStatus()) > statusRank(overall) {
				overall = r.GetStatus()
			}
		}
	}
	plural := "s"
	if len(results) == 1 {
		plural = ""
	}
	fmt.Fprintf(w, "\nOverall: %s (%d check%s in %s%s)\n", paint(color, overall, statusLabel(overall)), len(results), plural,
		roundDuration(rep.GetDuration().AsDuration()), saved)
}

func (e *runEnv) diag(args []string) error {
	fs := e.flags("diag", diagHelp)
	budget := fs.Duration("budget", 5*time.Second, "time the checks get on the device (1s to 60s)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	verbose := fs.Bool("v", false, "show the evidence of every check, passing ones too")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errUsage(fs, "a device ID is required (see `deskside devices list`)")
	}
	if *budget < minCheckBudget || *budget > maxCheckBudget {
		return errUsage(fs, "--budget must be between %s and %s", minCheckBudget, maxCheckBudget)
	}
	id, checks := pos[0], pos[1:]
	for _, ch := range checks {
		if !wire.IsCheckName(ch) {
			// Not the whole -h: the list is what helps.
			return &exitCodeError{code: exitUsage, msg: fmt.Sprintf("unknown check %q; the checks are:\n%s\n(see `deskside diag -h`)", clean(ch), checkList)}
		}
	}
	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	// The relay waits the budget and 10 s more for the agent.
	ctx, cancel := context.WithTimeout(e.ctx, *budget+30*time.Second)
	defer cancel()
	resp, err := c.client.RunChecks(ctx, &desksidev1.RunChecksRequest{DeviceId: id, Checks: checks, Budget: durationpb.New(*budget)})
	if err != nil {
		return c.explain(err)
	}
	out := e.output()
	if *asJSON {
		if err := writeJSON(out, resp); err != nil {
			return err
		}
	} else {
		saved := ""
		if resp.GetReportId() != 0 {
			saved = fmt.Sprintf("; saved as report %d", resp.GetReportId())
		}
		writeReport(out, resp.GetReport(), e.useColor(e.stdout), *verbose, saved)
	}
	if err := out.Flush(); err != nil {
		return err
	}
	return exitWith(verdictCode(resp.GetReport()))
}

const diagHistoryHelp = `
Lists a device's stored diagnostics reports, newest first: who ran them,
when, the overall verdict and the checks that did not pass. --report ID
prints one of them in full, as ` + "`deskside diag`" + ` did.`

func (e *runEnv) diagHistory(args []string) error {
	fs := e.flags("diag history", diagHistoryHelp)
	limit := fs.Int("limit", 20, "at most `N` reports (up to 1000)")
	reportID := fs.Int64("report", 0, "print the stored report `ID` in full")
	asJSON := fs.Bool("json", false, "print a JSON array of reports")
	verbose := fs.Bool("v", false, "with --report, show the evidence of every check")
	id, err := parseID(fs, args)
	if err != nil {
		return err
	}
	if *limit <= 0 || *limit > 1000 {
		return errUsage(fs, "--limit must be between 1 and 1000")
	}
	if *reportID < 0 {
		return errUsage(fs, "--report must be a report ID from the list")
	}
	req := &desksidev1.ListCheckReportsRequest{DeviceId: id, Limit: int32(*limit)}
	if *reportID != 0 {
		req.Limit = 1000
	}
	resp, err := unary(e, func(ctx context.Context, cs desksidev1.ConsoleServiceClient) (*desksidev1.ListCheckReportsResponse, error) {
		return cs.ListCheckReports(ctx, req)
	})
	if err != nil {
		return err
	}
	reps := resp.GetReports()
	out := e.output()
	switch {
	case *reportID != 0:
		i := slices.IndexFunc(reps, func(r *desksidev1.StoredCheckReport) bool { return r.GetId() == *reportID })
		if i < 0 {
			return fmt.Errorf("device %s has no stored report %d among its latest %d: see `deskside diag history %s`",
				clean(id), *reportID, len(reps), clean(id))
		}
		r := reps[i]
		if *asJSON {
			if err := writeJSON(out, r); err != nil {
				return err
			}
			break
		}
		fmt.Fprintf(out, "Report %d of %s, run by %s at %s\n\n", r.GetId(), clean(id), clean(r.GetTechnician()), fmtTime(r.GetTime().AsTime()))
		writeReport(out, r.GetReport(), e.useColor(e.stdout), *verbose, "")
	case *asJSON:
		if err := writeJSONArray(out, reps); err != nil {
			return err
		}
	case len(reps) == 0:
		fmt.Fprintf(out, "No diagnostics reports for %s yet: run `deskside diag %s`.\n", clean(id), clean(id))
	default:
		rows := make([][]string, 0, len(reps))
		for _, r := range reps {
			rep := r.GetReport()
			var bad []string
			for _, res := range rep.GetResults() {
				switch res.GetStatus() {
				case desksidev1.CheckStatus_CHECK_STATUS_WARN, desksidev1.CheckStatus_CHECK_STATUS_FAIL:
					bad = append(bad, res.GetName()+" ("+strings.ToLower(statusLabel(res.GetStatus()))+")")
				}
			}
			notPassing := strings.Join(bad, ", ")
			if notPassing == "" {
				notPassing = "-"
			}
			rows = append(rows, []string{strconv.FormatInt(r.GetId(), 10), fmtTime(r.GetTime().AsTime()), r.GetTechnician(),
				statusLabel(rep.GetOverall()), strconv.Itoa(len(rep.GetResults())), roundDuration(rep.GetDuration().AsDuration()).String(), notPassing})
		}
		if err := table(out, "", []string{"REPORT", "TIME", "TECHNICIAN", "OVERALL", "CHECKS", "DURATION", "NOT PASSING"}, rows); err != nil {
			return err
		}
	}
	return out.Flush()
}

const devicesGroupHelp = `
Puts a device in a group (admin only). The group's check thresholds, set
with ` + "`deskside group thresholds`" + `, then apply to its diagnostics. An empty
GROUP ("") takes the device out of its group.

Example:
  deskside devices group dev-0123 build-servers`

func (e *runEnv) devicesGroup(args []string) error {
	fs := e.flags("devices group", devicesGroupHelp)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errUsage(fs, "a device ID and a group name are required (\"\" takes the device out of its group)")
	}
	id, group := pos[0], strings.TrimSpace(pos[1])
	if err := checkGroupName(group, true); err != nil {
		return errUsage(fs, "%v", err)
	}
	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := e.rpcContext()
	defer cancel()
	if _, err := c.client.SetDeviceGroup(ctx, &desksidev1.SetDeviceGroupRequest{DeviceId: id, Group: group}); err != nil {
		return c.explain(err)
	}
	if group == "" {
		_, err = fmt.Fprintf(e.stdout, "%s is in no group now: its checks use the agent's default thresholds.\n", clean(id))
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s is in group %s now: its checks use the group's thresholds "+
		"(set them with `deskside group thresholds %s`).\n", clean(id), group, shellQuote(group))
	return err
}

// maxGroupName is the relay's cap on group names.
const maxGroupName = 64

// checkGroupName refuses group names the relay would alter.
func checkGroupName(g string, emptyOK bool) error {
	switch {
	case g == "" && !emptyOK:
		return errors.New("a group name is required")
	case utf8.RuneCountInString(g) > maxGroupName:
		return fmt.Errorf("group names are at most %d characters", maxGroupName)
	case clean(g) != g:
		return errors.New("group names cannot contain control characters")
	}
	return nil
}

const groupThresholdsHelp = `
Sets the check thresholds and targets of a device group (admin only); they
apply to the diagnostics of the group's devices (` + "`deskside devices group`" + `).

The settings replace the group's previous ones as a whole: a setting not
given reverts to the agent's default (shown in brackets). --reset with no
other flag returns every setting to the default. Percentages are 0 to 100;
durations are Go durations (90s, 15m, 720h).

Example:
  deskside group thresholds build-servers --disk-warn 80 --disk-fail 90 --uptime-warn 1440h`

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func (e *runEnv) groupThresholds(args []string) error {
	fs := e.flags("group thresholds", groupThresholdsHelp)
	cfg := &desksidev1.CheckConfig{}
	var dnsServers stringList
	fs.StringVar(&cfg.DnsName, "dns-name", "", "`NAME` network.dns resolves [the relay's host name]")
	fs.Var(&dnsServers, "dns-server", "resolver `IP[:PORT]` network.dns asks instead of the system's (repeatable)")
	fs.StringVar(&cfg.HttpsUrl, "https-url", "", "`URL` network.https fetches [https://<relay>/]")
	num := func(p *float64, name, what string, def float64) {
		fs.Float64Var(p, name, 0, fmt.Sprintf("%s [%g]", what, def))
	}
	num(&cfg.DiskWarnPercent, "disk-warn", "disk used `PCT` at which disk.space warns", 85)
	num(&cfg.DiskFailPercent, "disk-fail", "disk used `PCT` at which disk.space fails", 95)
	num(&cfg.InodeWarnPercent, "inode-warn", "inodes used `PCT` at which disk.inodes warns", 85)
	num(&cfg.InodeFailPercent, "inode-fail", "inodes used `PCT` at which disk.inodes fails", 95)
	num(&cfg.MemoryWarnPercent, "memory-warn", "memory used `PCT` at which memory.pressure warns", 90)
	num(&cfg.MemoryFailPercent, "memory-fail", "memory used `PCT` at which memory.pressure fails", 97)
	num(&cfg.SwapWarnPercent, "swap-warn", "swap used `PCT` at which memory.swap warns", 50)
	num(&cfg.LoadWarnPerCore, "load-warn", "load average per core (`N`) at which cpu.load warns", 1.5)
	num(&cfg.LoadFailPerCore, "load-fail", "load average per core (`N`) at which cpu.load fails", 3)
	num(&cfg.CpuHogPercent, "cpu-hog", "CPU use `PCT` of one core above which cpu.hogs reports a process", 90)
	updates := fs.Uint("updates-warn", 0, "pending updates (`N`) at which updates.pending warns [1]")
	timeOffset := fs.Duration("time-offset-warn", 0, "clock offset at which time.sync warns [1s]")
	uptime := fs.Duration("uptime-warn", 0, "uptime after which system.uptime suggests a reboot [720h]")
	reset := fs.Bool("reset", false, "return every setting not given to the agent's default")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return errUsage(fs, "a group name is required")
	case len(pos) > 1:
		return errUsage(fs, "one group name expected, got %d arguments", len(pos))
	}
	group := strings.TrimSpace(pos[0])
	if err := checkGroupName(group, false); err != nil {
		return errUsage(fs, "%v", err)
	}
	given := 0
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "reset" {
			given++
		}
	})
	if given == 0 && !*reset {
		return errUsage(fs, "give at least one setting, or --reset to return them all to the agent's defaults")
	}

	for _, p := range []struct {
		name string
		v    float64
	}{
		{"disk-warn", cfg.DiskWarnPercent}, {"disk-fail", cfg.DiskFailPercent},
		{"inode-warn", cfg.InodeWarnPercent}, {"inode-fail", cfg.InodeFailPercent},
		{"memory-warn", cfg.MemoryWarnPercent}, {"memory-fail", cfg.MemoryFailPercent},
		{"swap-warn", cfg.SwapWarnPercent},
	} {
		if !(p.v >= 0 && p.v <= 100) { // also refuses NaN
			return errUsage(fs, "--%s must be a percentage between 0 and 100", p.name)
		}
	}
	// cpu.hogs measures % of one core, which a multithreaded process may
	// well exceed.
	for _, p := range []struct {
		name string
		v    float64
	}{{"load-warn", cfg.LoadWarnPerCore}, {"load-fail", cfg.LoadFailPerCore}, {"cpu-hog", cfg.CpuHogPercent / 100}} {
		if !(p.v >= 0 && p.v <= 1000) {
			return errUsage(fs, "--%s is out of range", p.name)
		}
	}
	for _, p := range []struct {
		warn, fail string
		w, f       float64
	}{
		{"disk-warn", "disk-fail", cfg.DiskWarnPercent, cfg.DiskFailPercent},
		{"inode-warn", "inode-fail", cfg.InodeWarnPercent, cfg.InodeFailPercent},
		{"memory-warn", "memory-fail", cfg.MemoryWarnPercent, cfg.MemoryFailPercent},
		{"load-warn", "load-fail", cfg.LoadWarnPerCore, cfg.LoadFailPerCore},
	} {
		if p.w > 0 && p.f > 0 && p.w > p.f {
			return errUsage(fs, "--%s %g is above --%s %g", p.warn, p.w, p.fail, p.f)
		}
	}
	if *updates > 1<<20 {
		return errUsage(fs, "--updates-warn is too large")
	}
	cfg.UpdatesWarn = uint32(*updates)
	if *timeOffset < 0 || *uptime < 0 {
		return errUsage(fs, "durations cannot be negative")
	}
	if *timeOffset > 0 {
		cfg.TimeOffsetWarn = durationpb.New(*timeOffset)
	}
	if *uptime > 0 {
		cfg.UptimeWarn = durationpb.New(*uptime)
	}
	for _, s := range dnsServers {
		s = strings.TrimSpace(s)
		if a, err := netip.ParseAddr(s); err == nil {
			cfg.DnsServers = append(cfg.DnsServers, netip.AddrPortFrom(a, 53).String())
		} else if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
			cfg.DnsServers = append(cfg.DnsServers, ap.String())
		} else {
			return errUsage(fs, "--dns-server %q: expected an IP address, optionally with a port (10.0.0.53, 10.0.0.53:53, [2001:db8::53]:53)", clean(s))
		}
	}
	if cfg.HttpsUrl != "" {
		u, err := url.Parse(cfg.HttpsUrl)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return errUsage(fs, "--https-url must be an https:// URL")
		}
	}
	if strings.ContainsAny(cfg.DnsName, " \t/") || clean(cfg.DnsName) != cfg.DnsName {
		return errUsage(fs, "--dns-name must be a host name")
	}

	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := e.rpcContext()
	defer cancel()
	if _, err := c.client.SetGroupCheckConfig(ctx, &desksidev1.SetGroupCheckConfigRequest{Group: group, Config: cfg}); err != nil {
		return c.explain(err)
	}
	out := e.output()
	pairs := checkConfigPairs(cfg)
	if len(pairs) == 0 {
		fmt.Fprintf(out, "Group %s now uses the agent's default thresholds for every check.\n", group)
	} else {
		fmt.Fprintf(out, "Check settings of group %s:\n", group)
		kv(out, pairs)
		fmt.Fprintln(out, "Every other setting is the agent's default.")
	}
	return out.Flush()
}

// checkConfigPairs lists the settings of cfg that are not defaults.
func checkConfigPairs(cfg *desksidev1.CheckConfig) [][2]string {
	var pairs [][2]string
	add := func(k, v string) {
		if v != "" {
			pairs = append(pairs, [2]string{k, v})
		}
	}
	num := func(v float64, unit string) string {
		if v == 0 {
			return ""
		}
		return strconv.FormatFloat(v, 'g', -1, 64) + unit
	}
	dur := func(d *durationpb.Duration) string {
		if d == nil {
			return ""
		}
		return d.AsDuration().String()
	}
	add("DNS name", cfg.GetDnsName())
	add("DNS servers", strings.Join(cfg.GetDnsServers(), ", "))
	add("HTTPS URL", cfg.GetHttpsUrl())
	add("Disk warn", num(cfg.GetDiskWarnPercent(), "%"))
	add("Disk fail", num(cfg.GetDiskFailPercent(), "%"))
	add("Inodes warn", num(cfg.GetInodeWarnPercent(), "%"))
	add("Inodes fail", num(cfg.GetInodeFailPercent(), "%"))
	add("Memory warn", num(cfg.GetMemoryWarnPercent(), "%"))
	add("Memory fail", num(cfg.GetMemoryFailPercent(), "%"))
	add("Swap warn", num(cfg.GetSwapWarnPercent(), "%"))
	add("Load warn", num(cfg.GetLoadWarnPerCore(), " per core"))
	add("Load fail", num(cfg.GetLoadFailPerCore(), " per core"))
	add("CPU hog", num(cfg.GetCpuHogPercent(), "% of a core"))
	if cfg.GetUpdatesWarn() > 0 {
		add("Updates warn", strconv.FormatUint(uint64(cfg.GetUpdatesWarn()), 10)+" pending")
	}
	add("Time offset warn", dur(cfg.GetTimeOffsetWarn()))
	add("Uptime warn", dur(cfg.GetUptimeWarn()))
	return pairs
}
