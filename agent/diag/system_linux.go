package diag

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// systemdRunDir exists when systemd is the running init (sd_booted(3)).
const systemdRunDir = "/run/systemd/system"

func systemdRunning() bool {
	fi, err := os.Stat(systemdRunDir)
	return err == nil && fi.IsDir()
}

// toolError describes a tool that ran but did not succeed.
func toolError(name string, res toolResult) error {
	msg := firstLine(string(res.stderr))
	if msg == "" {
		msg = firstLine(string(res.stdout))
	}
	return fmt.Errorf("%s exited with status %d: %s", name, res.exitCode, msg)
}

// failedUnits lists systemd's failed units.
func failedUnits(ctx context.Context, e *checkEnv) ([]string, error) {
	if !systemdRunning() {
		return nil, ErrNoSystemd
	}
	res, err := e.runTool(ctx, "systemctl", "--failed", "--no-legend", "--plain", "--no-pager")
	if err != nil {
		return nil, err
	}
	if res.exitCode != 0 {
		return nil, toolError("systemctl", res)
	}
	return parseFailedUnits(res.stdout), nil
}

// journalDirs hold the persistent and the volatile journal.
var journalDirs = []string{"/var/log/journal", "/run/log/journal"}

// hasJournal reports whether any journal file exists.
func hasJournal() bool {
	for _, d := range journalDirs {
		for _, pat := range []string{"*.journal", "*/*.journal"} {
			if m, _ := filepath.Glob(filepath.Join(d, pat)); len(m) > 0 {
				return true
			}
		}
	}
	return false
}

// journalErrors returns the last error-priority journal entries of the
// current boot, oldest first.
func journalErrors(ctx context.Context, e *checkEnv) ([]string, error) {
	if !hasJournal() {
		return nil, ErrNoJournal
	}
	res, err := e.runTool(ctx, "journalctl", "-p", "err", "-b", "--no-pager", "-o", "short-iso", "-n", strconv.Itoa(journalLines))
	if err != nil {
		return nil, err
	}
	if bytes.Contains(res.stderr, []byte("No journal files were found")) {
		return nil, ErrNoJournal
	}
	if res.exitCode != 0 {
		return nil, toolError("journalctl", res)
	}
	return parseJournal(res.stdout), nil
}

const (
	dpkgStatus = "/var/lib/dpkg/status"
	aptLists   = "/var/lib/apt/lists"
)

// pendingUpdates asks apt (a simulation, without the lock) or dnf (from
// its cache only) what is pending.
func pendingUpdates(ctx context.Context, e *checkEnv) (updateInfo, error) {
	if _, err := os.Stat(dpkgStatus); err == nil {
		res, err := e.runTool(ctx, "apt-get", "-s", "-o", "Debug::NoLocking=1", "upgrade")
		if err != nil {
			return updateInfo{}, err
		}
		if res.exitCode != 0 {
			return updateInfo{}, toolError("apt-get", res)
		}
		info := updateInfo{manager: "apt"}
		info.packages, info.security = parseAptSimulation(res.stdout)
		if t := newestMtime(aptLists); !t.IsZero() {
			info.listsAge = max(e.opts.Now().Sub(t), time.Second)
		}
		return info, nil
	}
	res, err := e.runTool(ctx, "dnf", "-q", "-C", "check-update")
	if errors.Is(err, ErrToolNotFound) {
		return updateInfo{}, ErrNoPackageManager
	}
	if err != nil {
		return updateInfo{}, err
	}
	switch res.exitCode {
	case 0:
		return updateInfo{manager: "dnf"}, nil
	case 100:
		return updateInfo{manager: "dnf", packages: parseDnfCheckUpdate(res.stdout)}, nil
	}
	return updateInfo{}, toolError("dnf", res)
}

// newestMtime is the latest modification time of the entries of dir.
func newestMtime(dir string) time.Time {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return time.Time{}
	}
	var t time.Time
	for _, e := range ents {
		if !strings.Contains(e.Name(), "Packages") && !strings.HasSuffix(e.Name(), "Release") {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t
}

const rebootRequiredFile = "/var/run/reboot-required"

// rebootRequired reads Debian's and Ubuntu's reboot-required flag and the
// packages that set it. Elsewhere the flag does not exist, so its absence
// means nothing.
func rebootRequired() (rebootInfo, error) {
	fi, err := os.Stat(rebootRequiredFile)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(dpkgStatus); err != nil {
			return rebootInfo{}, errors.New("only Debian and Ubuntu record pending reboots (" + rebootRequiredFile + ")")
		}
		return rebootInfo{}, nil
	}
	if err != nil {
		return rebootInfo{}, err
	}
	info := rebootInfo{required: true, since: fi.ModTime()}
	if b, err := readCappedFile(rebootRequiredFile+".pkgs", 64<<10); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if p := strings.TrimSpace(sc.Text()); p != "" && !slices.Contains(info.packages, p) {
				info.packages = append(info.packages, p)
			}
		}
	}
	return info, nil
}

// Kernel clock discipline (adjtimex(2)).
const (
	staUnsync = 0x0040
	staNano   = 0x2000
)

var timeStates = map[int]string{
	unix.TIME_OK: "TIME_OK", unix.TIME_INS: "TIME_INS", unix.TIME_DEL: "TIME_DEL",
	unix.TIME_OOP: "TIME_OOP", unix.TIME_WAIT: "TIME_WAIT", unix.TIME_ERROR: "TIME_ERROR",
}

// clockSync reads the kernel's clock state with adjtimex (a read: modes
// 0) and, when systemd runs, timedatectl's NTP settings.
func clockSync(ctx context.Context, e *checkEnv) (clockState, error) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return clockState{}, fmt.Errorf("adjtimex: %w", err)
	}
	st := clockState{
		synced: tx.Status&staUnsync == 0 && state != unix.TIME_ERROR,
		state:  timeStates[state],
		maxErr: time.Duration(tx.Maxerror) * time.Microsecond,
		estErr: time.Duration(tx.Esterror) * time.Microsecond,
	}
	if tx.Status&staNano != 0 {
		st.offset = time.Duration(tx.Offset)
	} else {
		st.offset = time.Duration(tx.Offset) * time.Microsecond
	}
	if systemdRunning() {
		res, err := e.runTool(ctx, "timedatectl", "show", "-p", "NTP", "-p", "NTPSynchronized")
		if err == nil && res.exitCode == 0 {
			props := parseProps(res.stdout)
			st.ntp = props["NTP"]
			if props["NTPSynchronized"] == "yes" {
				st.synced = true
			}
		}
	}
	return st, nil
}

// parseProps reads "Key=value" lines.
func parseProps(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

const psiMemory = "/proc/pressure/memory"

// readMemoryPSI reads /proc/pressure/memory (Linux 4.20+ with PSI on).
func readMemoryPSI() (memPSI, error) {
	b, err := readCappedFile(psiMemory, 4096)
	if err != nil {
		return memPSI{}, err
	}
	return parsePSI(b)
}

// parsePSI reads "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" and
// the "full" line.
func parsePSI(b []byte) (memPSI, error) {
	var p memPSI
	found := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		vals := map[string]float64{}
		for _, kv := range f[1:] {
			if k, v, ok := strings.Cut(kv, "="); ok {
				if x, err := strconv.ParseFloat(v, 64); err == nil {
					vals[k] = x
				}
			}
		}
		switch f[0] {
		case "some":
			p.someAvg10, p.someAvg60 = vals["avg10"], vals["avg60"]
			found = true
		case "full":
			p.fullAvg10, p.fullAvg60 = vals["avg10"], vals["avg60"]
			found = true
		}
	}
	if !found {
		return memPSI{}, errors.New("unexpected " + psiMemory + " format")
	}
	return p, nil
}

const etcEnvironment = "/etc/environment"

// systemProxySettings reads the proxy variables of /etc/environment (pam_env
// gives them to every login session). A missing file sets nothing.
func systemProxySettings() (map[string]string, string, error) {
	b, err := readCappedFile(etcEnvironment, 64<<10)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, etcEnvironment, nil
	}
	if err != nil {
		return nil, etcEnvironment, err
	}
	return parseEnvironment(b), etcEnvironment, nil
}

// parseEnvironment reads KEY=value lines (optionally quoted, optionally
// prefixed with "export"), keeping the proxy variables.
func parseEnvironment(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		l = strings.TrimPrefix(l, "export ")
		k, v, ok := strings.Cut(l, "=")
		if !ok || !slices.Contains(proxyVars, strings.TrimSpace(k)) {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[strings.TrimSpace(k)] = v
	}
	return out
}
