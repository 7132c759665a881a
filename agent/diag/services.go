package diag

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
)

func checkServices(ctx context.Context, e *checkEnv) *result {
	units, err := failedUnits(ctx, e)
	if errors.Is(err, ErrToolNotFound) {
		return unavailable("systemctl is not installed")
	}
	if err != nil {
		return new(result).fromError("could not list units", err)
	}
	return evalServices(units)
}

// parseFailedUnits reads systemctl --failed --no-legend --plain: "UNIT
// LOAD ACTIVE SUB DESCRIPTION" per line (a leading bullet is dropped, for
// versions that print one anyway).
func parseFailedUnits(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(strings.TrimLeft(sc.Text(), "●* \t"))
		if len(f) == 0 || !strings.Contains(f[0], ".") {
			continue
		}
		out = append(out, f[0])
	}
	return out
}

// evalServices decides services.failed: any failed unit fails.
func evalServices(units []string) *result {
	r := new(result)
	for _, u := range units {
		r.add("failed", u)
	}
	if len(units) > 0 {
		return r.fail(fmt.Sprintf("%s failed: %s", plural(len(units), "service", "services"), listNames(units, 3)),
			"Look at why with journalctl -u <unit> (see logs.errors), then restart the service; one that keeps failing needs its configuration fixed.")
	}
	return r.pass("no failed services")
}

func checkLogs(ctx context.Context, e *checkEnv) *result {
	lines, err := journalErrors(ctx, e)
	if errors.Is(err, ErrToolNotFound) {
		return unavailable("journalctl is not installed")
	}
	if err != nil {
		return new(result).fromError("could not read the journal", err)
	}
	return evalLogs(lines, journalLines)
}

// journalLines is how many entries journalctl is asked for.
const journalLines = 50

// journalShown is how many of the last entries become evidence.
const journalShown = 10

// parseJournal keeps the entries of journalctl's output, dropping its
// "-- ... --" markers.
func parseJournal(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "-- ") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// evalLogs decides logs.errors: any error-priority entry this boot warns.
func evalLogs(lines []string, limit int) *result {
	r := new(result)
	count := fmt.Sprint(len(lines))
	if len(lines) >= limit {
		count = fmt.Sprintf("%d or more", limit)
	}
	r.add("errors this boot", count)
	first := max(0, len(lines)-journalShown)
	for i, l := range lines[first:] {
		r.add(fmt.Sprintf("entry %d", first+i+1), l)
	}
	if len(lines) > 0 {
		return r.warn(count+" errors logged since boot",
			"Read the latest entries: repeated errors from one service or device point at the component to fix; isolated ones are often harmless.")
	}
	return r.pass("no errors logged since boot")
}
