package diag

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

const (
	// listsStale is the age of the package lists beyond which the
	// pending count is flagged as possibly incomplete.
	listsStale = 7 * 24 * time.Hour
	// maxPackagesListed bounds package names in evidence.
	maxPackagesListed = 10
)

// updateInfo is what the package manager says is pending.
type updateInfo struct {
	manager  string
	packages []string
	security int
	listsAge time.Duration // age of the package metadata, 0 when unknown
}

func checkUpdates(ctx context.Context, e *checkEnv) *result {
	info, err := pendingUpdates(ctx, e)
	if errors.Is(err, ErrToolNotFound) {
		return unavailable("the package manager's tool is not installed")
	}
	if err != nil {
		return new(result).fromError("could not list updates", err)
	}
	return evalUpdates(info, e.cfg.updatesWarn)
}

// parseAptSimulation reads apt-get -s upgrade: one "Inst name [old] (new
// origin [arch])" line per package to upgrade.
func parseAptSimulation(b []byte) (pkgs []string, security int) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "Inst ") {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		pkgs = append(pkgs, f[1])
		if strings.Contains(strings.ToLower(l), "-security") {
			security++
		}
	}
	return pkgs, security
}

// parseDnfCheckUpdate reads dnf -q check-update (exit 100): "name.arch
// version repo" lines, then possibly "Obsoleting Packages".
func parseDnfCheckUpdate(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "Obsoleting") {
			break
		}
		f := strings.Fields(l)
		if len(f) != 3 || strings.HasPrefix(l, " ") || !strings.Contains(f[0], ".") {
			continue
		}
		out = append(out, f[0])
	}
	return out
}

// evalUpdates decides updates.pending: updates_warn pending or more warns.
func evalUpdates(info updateInfo, warnAt uint32) *result {
	r := new(result)
	n := len(info.packages)
	r.add("package manager", info.manager)
	r.addf("pending", "%d", n)
	if info.security > 0 {
		r.addf("security", "%d", info.security)
	}
	if n > 0 {
		r.add("packages", listNames(info.packages, maxPackagesListed))
	}
	if info.listsAge > 0 {
		age := "package lists refreshed " + fmtDur(info.listsAge) + " ago"
		if info.listsAge > listsStale {
			age += " (stale: more updates may exist)"
		}
		r.add("lists", age)
	}
	summary := plural(n, "update", "updates") + " pending"
	if info.security > 0 {
		summary += fmt.Sprintf(" (%d security)", info.security)
	}
	if n > 0 && uint64(n) >= uint64(warnAt) {
		return r.warn(summary, "Install the updates in a maintenance window (the update tool, or apt-get upgrade / dnf upgrade); security updates first.")
	}
	return r.pass(summary)
}

// rebootInfo is the system's record of a pending reboot.
type rebootInfo struct {
	required bool
	since    time.Time
	packages []string
}

func checkReboot(_ context.Context, e *checkEnv) *result {
	info, err := rebootRequired()
	if err != nil {
		return new(result).fromError("could not tell", err)
	}
	return evalReboot(info, e.opts.Now())
}

// evalReboot decides updates.reboot: a pending reboot warns.
func evalReboot(info rebootInfo, now time.Time) *result {
	r := new(result)
	if !info.required {
		return r.pass("no reboot required")
	}
	if !info.since.IsZero() {
		r.add("since", info.since.UTC().Format(time.RFC3339)+" ("+fmtDur(now.Sub(info.since))+" ago)")
	}
	if len(info.packages) > 0 {
		r.add("packages", listNames(info.packages, maxPackagesListed))
	}
	return r.warn("a reboot is required to finish installing updates",
		"Ask the user to save their work and reboot (or schedule a reboot): updated components, often the kernel or security libraries, are not in use until then.")
}

// clockState is the clock's synchronisation state.
type clockState struct {
	synced          bool
	state           string // kernel clock state (TIME_OK, TIME_ERROR, ...)
	offset          time.Duration
	maxErr, estErr  time.Duration
	ntp, ntpService string // from timedatectl when available
}

func checkTimeSync(ctx context.Context, e *checkEnv) *result {
	st, err := clockSync(ctx, e)
	if err != nil {
		return new(result).fromError("could not read the clock state", err)
	}
	return evalTime(st, e.cfg.timeOffsetWarn)
}

// evalTime decides time.sync: not synchronised, or an offset of
// time_offset_warn or more, warns.
func evalTime(st clockState, warn time.Duration) *result {
	r := new(result)
	r.add("synchronised", yesNo(st.synced))
	if st.state != "" {
		r.add("kernel state", st.state)
	}
	r.add("offset", fmtDur(st.offset))
	r.add("max error", fmtDur(st.maxErr))
	r.add("estimated error", fmtDur(st.estErr))
	if st.ntp != "" {
		r.add("NTP enabled", st.ntp)
	}
	if st.ntpService != "" {
		r.add("NTP service", st.ntpService)
	}
	hint := "Turn on network time (timedatectl set-ntp true, or start chrony / systemd-timesyncd) and check that NTP (UDP 123) is not blocked. A wrong clock breaks TLS, logins and logs."
	if st.ntp == "no" {
		hint = "Network time is turned off: timedatectl set-ntp true. A wrong clock breaks TLS, logins and logs."
	}
	off := st.offset
	if off < 0 {
		off = -off
	}
	switch {
	case !st.synced:
		return r.warn("the clock is not synchronised", hint)
	case off >= warn:
		return r.warn(fmt.Sprintf("the clock is off by %s", fmtDur(st.offset)), hint)
	}
	return r.pass(fmt.Sprintf("the clock is synchronised (offset %s)", fmtDur(st.offset)))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
