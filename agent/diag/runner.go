package diag

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

const (
	// DefaultBudget is the time a run gets when the request sets none.
	DefaultBudget = 5 * time.Second
	// MaxBudget caps the budget a request may ask for.
	MaxBudget = 60 * time.Second
	// maxSoftMargin bounds the head start checks get on the budget.
	maxSoftMargin = 500 * time.Millisecond
	// maxResults bounds the checks one request may name (the relay's
	// default list cap).
	maxResults = 256
)

// Log attribute keys.
const (
	logKeyCheck    = "check"
	logKeyStatus   = "status"
	logKeyDuration = "duration"
	logKeyErr      = "err"
	logKeyField    = "field"
)

// Options configure a Runner. The zero value is usable.
type Options struct {
	// Logger receives debug logs of each run; nil discards.
	Logger *slog.Logger
	// RelayHost is the relay's host name (optionally host:port, or a URL
	// whose host is taken): the default name network.dns resolves and the
	// default target (https://RelayHost/) of network.https.
	RelayHost string
	// Now stamps reports and dates evidence (file ages, certificate
	// expiry, boot time); default time.Now.
	Now func() time.Time
	// RootCAs are the roots network.https trusts; nil means the system's.
	RootCAs *x509.CertPool
	// ExtraMounts are mountpoints disk.space and disk.inodes check even
	// when their file system is a pseudo or memory-backed one that is
	// skipped by default (a tmpfs /tmp, say).
	ExtraMounts []string
}

// withDefaults returns o with defaults filled in.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.RelayHost = relayHostPort(o.RelayHost)
	o.ExtraMounts = slices.Clone(o.ExtraMounts)
	return o
}

// relayHostPort reduces the forms RelayHost may take ("host",
// "host:port", "[v6]:port", "https://host:port/path") to host or host:port.
func relayHostPort(s string) string {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil {
			return u.Host
		}
		return ""
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	return s
}

// relayName is the relay's host name without port, "" when unset.
func (o Options) relayName() string {
	if h, _, err := net.SplitHostPort(o.RelayHost); err == nil {
		return h
	}
	return strings.Trim(o.RelayHost, "[]")
}

// checkFunc is one check. ctx is canceled when the run's budget runs out;
// the check must return then (its result is discarded).
type checkFunc func(ctx context.Context, e *checkEnv) *result

// builtin lists the checks by name.
var builtin = map[string]checkFunc{
	"network.interfaces": checkInterfaces,
	"network.gateway":    checkGateway,
	"network.dns":        checkDNS,
	"network.https":      checkHTTPS,
	"network.proxy":      checkProxy,
	"disk.space":         checkDiskSpace,
	"disk.inodes":        checkDiskInodes,
	"disk.smart":         checkSMART,
	"memory.pressure":    checkMemory,
	"memory.swap":        checkSwap,
	"cpu.load":           checkLoad,
	"cpu.hogs":           checkHogs,
	"services.failed":    checkServices,
	"logs.errors":        checkLogs,
	"updates.pending":    checkUpdates,
	"updates.reboot":     checkReboot,
	"time.sync":          checkTimeSync,
	"system.uptime":      checkUptime,
}

// Runner runs diagnostic checks. It is safe for concurrent use; every
// Run is independent.
type Runner struct {
	opts   Options
	logger *slog.Logger
	checks map[string]checkFunc // tests add hooks here
}

// New returns a Runner.
func New(o Options) *Runner {
	o = o.withDefaults()
	return &Runner{opts: o, logger: o.Logger, checks: maps.Clone(builtin)}
}

// Names returns the names of all checks, sorted.
func (r *Runner) Names() []string {
	return slices.Sorted(maps.Keys(r.checks))
}

// checkEnv is what a check sees of its run.
type checkEnv struct {
	cfg    config
	opts   Options
	logger *slog.Logger
	tools  *pidSet // processes started by this run's checks
	margin time.Duration
}

// early returns ctx with its deadline moved e.margin earlier: what checks
// waiting on the network or on tools use, so that they still report a
// verdict of their own before the budget runs out.
func (e *checkEnv) early(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && e.margin > 0 {
		return context.WithDeadline(ctx, dl.Add(-e.margin))
	}
	return context.WithCancel(ctx)
}

// Run runs the checks req names (all when it names none) in parallel
// within req's budget and returns their results sorted by name. It always
// returns a report: a check that cannot run, an unknown name, a check that
// panicked or did not finish in time each yield an UNAVAILABLE result. Run
// returns when every check has finished or the budget has run out (or ctx
// is done), whichever comes first.
func (r *Runner) Run(ctx context.Context, req *desksidev1.RunChecks) *desksidev1.CheckReport {
	start := time.Now()
	report := &desksidev1.CheckReport{Started: timestamppb.New(r.opts.Now())}
	budget := budgetOf(req.GetBudget())
	cfg := newConfig(req.GetConfig(), r.opts, r.logger)
	names := r.requested(req.GetChecks())

	runCtx, cancel := context.WithTimeout(ctx, budget)
	defer cancel() // abandons the checks still running
	env := &checkEnv{cfg: cfg, opts: r.opts, logger: r.logger, tools: newPIDSet(), margin: min(budget/10, maxSoftMargin)}
	type done struct {
		i   int
		res *desksidev1.CheckResult
	}
	// Buffered: an abandoned check still delivers without blocking.
	ch := make(chan done, len(names))
	results := make([]*desksidev1.CheckResult, len(names))
	pending := 0
	for i, name := range names {
		fn, ok := r.checks[name]
		if !ok {
			results[i] = unavailable(fmt.Sprintf("unknown check %q", name)).proto(name, 0)
			continue
		}
		pending++
		go func() {
			ch <- done{i, r.runOne(runCtx, env, name, fn, start)}
		}()
	}
wait:
	for pending > 0 {
		select {
		case d := <-ch:
			results[d.i] = d.res
			pending--
		case <-runCtx.Done():
			break wait
		}
	}
drain: // those that finished at the wire
	for pending > 0 {
		select {
		case d := <-ch:
			results[d.i] = d.res
			pending--
		default:
			break drain
		}
	}
	for i, res := range results {
		if res != nil {
			continue
		}
		why := fmt.Sprintf("did not finish within the %v budget", budget)
		if ctx.Err() != nil {
			why = "did not finish: the run was canceled"
		}
		results[i] = unavailable(why).proto(names[i], time.Since(start))
		r.logger.Debug("check abandoned", logKeyCheck, names[i], logKeyDuration, time.Since(start))
	}
	report.Results = results
	report.Overall = worst(results)
	report.Duration = durationpb.New(time.Since(start))
	if err := wire.DefaultCaps.Sanitize(report.ProtoReflect()); err != nil {
		r.logger.Warn("check report over the relay's caps", logKeyErr, err)
	}
	return report
}

// requested returns the names to run, deduplicated and sorted: all checks
// when none are named. Names are cleaned, since unknown ones are echoed.
func (r *Runner) requested(in []string) []string {
	if len(in) == 0 {
		return r.Names()
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range in {
		n = wire.CleanString(strings.TrimSpace(n), maxNameRunes)
		if seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
		if len(out) == maxResults {
			r.logger.Warn("too many checks requested; the rest are ignored", "limit", maxResults)
			break
		}
	}
	slices.Sort(out)
	return out
}

// runOne runs one check, turning a panic into an UNAVAILABLE result. It
// returns nil when the check returned only because ctx was done: its
// result came too late and it is reported as not finished.
func (r *Runner) runOne(ctx context.Context, e *checkEnv, name string, fn checkFunc, start time.Time) (out *desksidev1.CheckResult) {
	defer func() {
		if p := recover(); p != nil {
			r.logger.Error("check panicked", logKeyCheck, name, logKeyErr, fmt.Sprint(p), "stack", string(debug.Stack()))
			out = unavailable(fmt.Sprintf("the check crashed: %v", p)).proto(name, time.Since(start))
		}
	}()
	t0 := time.Now()
	res := fn(ctx, e)
	if ctx.Err() != nil {
		return nil // returned because the run was over: not finished
	}
	if res == nil {
		res = unavailable("the check returned no result")
	}
	d := time.Since(t0)
	r.logger.Debug("check done", logKeyCheck, name, logKeyStatus, res.status.String(), logKeyDuration, d)
	return res.proto(name, d)
}

// budgetOf returns the run's budget: DefaultBudget when unset or
// invalid, at most MaxBudget.
func budgetOf(d *durationpb.Duration) time.Duration {
	if d == nil || d.CheckValid() != nil || d.AsDuration() <= 0 {
		return DefaultBudget
	}
	return min(d.AsDuration(), MaxBudget)
}

// rank orders statuses for the overall verdict (see the package doc).
func rank(s desksidev1.CheckStatus) int {
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

// worse returns the worse of two statuses.
func worse(a, b desksidev1.CheckStatus) desksidev1.CheckStatus {
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// worst is the overall status of results.
func worst(results []*desksidev1.CheckResult) desksidev1.CheckStatus {
	s := desksidev1.CheckStatus_CHECK_STATUS_UNSPECIFIED
	for _, r := range results {
		s = worse(s, r.GetStatus())
	}
	return s
}
