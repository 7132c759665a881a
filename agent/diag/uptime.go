package diag

import (
	"context"
	"fmt"
	"time"

	"github.com/shirou/gopsutil/v3/host"
)

func checkUptime(ctx context.Context, e *checkEnv) *result {
	secs, err := host.UptimeWithContext(ctx)
	if err != nil {
		return unavailable("could not read the uptime: " + firstLine(err.Error()))
	}
	return evalUptime(time.Duration(secs)*time.Second, e.opts.Now(), e.cfg.uptimeWarn)
}

// evalUptime decides system.uptime: up for uptime_warn or longer warns.
func evalUptime(up time.Duration, now time.Time, warn time.Duration) *result {
	r := new(result)
	r.add("uptime", fmtDur(up))
	r.add("booted", now.Add(-up).UTC().Format(time.RFC3339))
	if up >= warn {
		return r.warn(fmt.Sprintf("up for %s without a reboot (over %s)", fmtDur(up), fmtDur(warn)),
			"Suggest a reboot at a convenient time: it applies installed updates and clears leaked memory and stuck processes.")
	}
	return r.pass("up for " + fmtDur(up))
}
