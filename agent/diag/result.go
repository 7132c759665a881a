package diag

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

// Caps on what a result carries (below the relay's: 256 runes a string,
// 256 entries a list).
const (
	maxNameRunes  = 64
	maxKeyRunes   = 128
	maxValueRunes = 256
	maxTextRunes  = 256
	maxEvidence   = 48
)

const (
	statusPass        = desksidev1.CheckStatus_CHECK_STATUS_PASS
	statusWarn        = desksidev1.CheckStatus_CHECK_STATUS_WARN
	statusFail        = desksidev1.CheckStatus_CHECK_STATUS_FAIL
	statusUnavailable = desksidev1.CheckStatus_CHECK_STATUS_UNAVAILABLE
)

// result is a check's outcome under construction.
type result struct {
	status   desksidev1.CheckStatus
	summary  string
	hint     string
	evidence []*desksidev1.CheckEvidence
	dropped  int // evidence entries over maxEvidence
}

// add records one piece of evidence, cleaned and capped; entries past
// maxEvidence are counted, not kept.
func (r *result) add(key, value string) *result {
	if len(r.evidence) >= maxEvidence-1 {
		r.dropped++
		return r
	}
	r.evidence = append(r.evidence, &desksidev1.CheckEvidence{
		Key:   wire.CleanString(strings.TrimSpace(key), maxKeyRunes),
		Value: wire.CleanString(strings.TrimSpace(value), maxValueRunes),
	})
	return r
}

// addf is add with a formatted value.
func (r *result) addf(key, format string, args ...any) *result {
	return r.add(key, fmt.Sprintf(format, args...))
}

// set gives r its verdict.
func (r *result) set(status desksidev1.CheckStatus, summary, hint string) *result {
	r.status, r.summary, r.hint = status, summary, hint
	return r
}

func (r *result) pass(summary string) *result { return r.set(statusPass, summary, "") }

func (r *result) warn(summary, hint string) *result { return r.set(statusWarn, summary, hint) }

func (r *result) fail(summary, hint string) *result { return r.set(statusFail, summary, hint) }

func (r *result) unavailable(summary string) *result {
	return r.set(statusUnavailable, summary, "")
}

// unavailable returns a fresh UNAVAILABLE result.
func unavailable(summary string) *result { return new(result).unavailable(summary) }

// notSupported is the summary of a check this platform cannot run.
func notSupported() string { return fmt.Sprintf("not supported on %s yet", runtime.GOOS) }

// fromError turns the error of a reading into an UNAVAILABLE result: the
// named errors get their own wording, others are prefixed with what.
func (r *result) fromError(what string, err error) *result {
	switch {
	case errors.Is(err, ErrNotSupported):
		return r.unavailable(notSupported())
	case errors.Is(err, ErrNoSystemd), errors.Is(err, ErrNoJournal), errors.Is(err, ErrNoPackageManager):
		return r.unavailable(firstLine(err.Error()))
	}
	return r.unavailable(what + ": " + firstLine(err.Error()))
}

// proto returns the CheckResult, every string cleaned and capped.
func (r *result) proto(name string, d time.Duration) *desksidev1.CheckResult {
	ev := r.evidence
	if r.dropped > 0 {
		ev = append(ev, &desksidev1.CheckEvidence{Key: "more", Value: fmt.Sprintf("%d more not shown", r.dropped)})
	}
	return &desksidev1.CheckResult{
		Name:     wire.CleanString(name, maxNameRunes),
		Status:   r.status,
		Summary:  wire.CleanString(strings.TrimSpace(r.summary), maxTextRunes),
		Hint:     wire.CleanString(strings.TrimSpace(r.hint), maxTextRunes),
		Evidence: ev,
		Duration: durationpb.New(d),
	}
}

// level compares v with warn and fail thresholds (">=").
func level(v, warn, fail float64) desksidev1.CheckStatus {
	switch {
	case v >= fail:
		return statusFail
	case v >= warn:
		return statusWarn
	}
	return statusPass
}

// percent returns 100*part/whole, 0 when whole is 0.
func percent(part, whole uint64) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// fmtPct renders a percentage with one decimal, rounded down so that a
// value under a threshold never reads as the threshold (84.99 is 84.9%).
func fmtPct(p float64) string {
	if math.IsNaN(p) || math.IsInf(p, 0) {
		return "?"
	}
	return strconv.FormatFloat(math.Floor(p*10+1e-9)/10, 'f', 1, 64) + "%"
}

// fmtDur renders a duration rounded for reading: "12ms", "1.3s", "3d4h".
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + fmtDur(-d)
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	days := d / (24 * time.Hour)
	return fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
}

// firstLine returns the first non-empty line of s, trimmed.
func firstLine(s string) string {
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// listNames joins up to n names, saying how many more there are.
func listNames(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
}

// plural returns "1 thing" or "n things".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
