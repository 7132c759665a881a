package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deskside/deskside/agent/orgtrust"
	"github.com/deskside/deskside/agent/update"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

// exitAtStart, set only at link time (-X .../agent/cli.exitAtStart=1),
// makes `run` exit right after the update check: the broken build the
// rollback test installs.
var exitAtStart string

const updateUsage = "usage: deskside-agent update pin FINGERPRINT | apply --manifest FILE.release --binary FILE | status  [--state DIR]"

func cmdUpdate(version string, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(updateUsage)
	}
	fs := newFlags("update "+args[0], stderr)
	state := fs.String("state", DefaultStateDir(), "state directory")
	manifest := fs.String("manifest", "", "signed release manifest (deskside release sign wrote it)")
	binary := fs.String("binary", "", "the agent executable the manifest signs")
	confirm := fs.Duration("confirm-within", update.DefaultConfirmWithin, "roll back unless the new version reaches the relay within this time")
	rest := args[1:]
	var fp string
	if args[0] == "pin" && len(rest) > 0 && !strings.HasPrefix(rest[0], "--") {
		fp, rest = rest[0], rest[1:] // a fingerprint may start with "-"
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if fp == "" && fs.NArg() > 0 {
		fp = fs.Arg(0)
	}
	switch args[0] {
	case "pin":
		if fp == "" {
			return errors.New("usage: deskside-agent update pin FINGERPRINT [--state DIR] (the fingerprint `deskside release keygen` printed)")
		}
		if org, _, _ := orgtrust.ReadPin(*state); org != "" && strings.TrimSpace(fp) == org {
			return update.ErrOrgKey
		}
		if err := update.Pin(*state, fp); err != nil {
			return fmt.Errorf("%w (run as root, with the state directory of the agent)", err)
		}
		fmt.Fprintf(stdout, "Pinned release key %s: this agent installs only updates signed with it.\n", strings.TrimSpace(fp))
		return nil
	case "apply":
		if *manifest == "" || *binary == "" {
			return errors.New("usage: deskside-agent update apply --manifest FILE.release --binary FILE [--state DIR]")
		}
		u, err := newUpdater(*state, version, *confirm)
		if err != nil {
			return err
		}
		r, err := readRelease(*manifest)
		if err != nil {
			return err
		}
		f, err := os.Open(*binary)
		if err != nil {
			return err
		}
		defer f.Close()
		m, err := u.Install(r, f)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Installed %s in place of %s (kept as %s%s).\nRestart the agent to run it: deskside-agent restart; it rolls back by itself unless it reaches the relay within %s.\n",
			m.GetVersion(), version, u.Exe, update.PreviousExt, *confirm)
		return nil
	case "status":
		pin, err := update.ReadPin(*state)
		switch {
		case err != nil:
			pin = err.Error()
		case pin == "":
			pin = update.ErrNoPin.Error()
		}
		fmt.Fprintf(stdout, "version       %s\nrelease key   %s\n", version, pin)
		if o := update.Last(*state); o != nil {
			fmt.Fprintf(stdout, "last update   %s %s at %s %s\n", o.Version, o.State, o.At.Format(time.RFC3339), o.Reason)
		}
		return nil
	}
	return errors.New(updateUsage)
}

func readRelease(path string) (*desksidev1.SignedRelease, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return envelope.ReadRelease(path, b)
}

// newUpdater is the updater of this executable with state in dir.
func newUpdater(dir, version string, confirm time.Duration) (*update.Updater, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return nil, err
	}
	org, _, _ := orgtrust.ReadPin(dir)
	return &update.Updater{Dir: dir, Exe: exe, Version: version, OrgPin: org, ConfirmWithin: confirm, CheckStart: true}, nil
}

// startUpdate runs the pending-update check first thing in `run`; a
// rollback returns update.ErrRolledBack and the caller exits so the
// previous version starts.
func startUpdate(log *slog.Logger, dir, version string) (*update.Updater, *update.Pending, error) {
	u, err := newUpdater(dir, version, 0)
	if err != nil {
		return nil, nil, err
	}
	p, err := u.Start()
	if errors.Is(err, update.ErrRolledBack) {
		log.Error("update rolled back", "err", err)
		restartProcess()
	}
	if err != nil {
		log.Warn("pending update marker unreadable; removed", "err", err)
	}
	if p != nil {
		log.Info("running a new version on trial", "version", version, "previous", p.Previous, "start", p.Attempts, "deadline", p.Deadline)
	}
	if exitAtStart != "" {
		return u, p, errors.New("exit at start (test build)")
	}
	return u, p, nil
}

// lastUpdate is how the last update ended, for the relay (Hello).
func lastUpdate(dir string) *desksidev1.UpdateStatus {
	o := update.Last(dir)
	if o == nil {
		return nil
	}
	st := desksidev1.UpdateState_UPDATE_STATE_INSTALLED
	if o.State == update.StateRolledBack {
		st = desksidev1.UpdateState_UPDATE_STATE_ROLLED_BACK
	}
	return &desksidev1.UpdateStatus{Version: o.Version, State: st, Reason: o.Reason}
}

// logUpdatePin says once, at start, when auto-update is off (no release key
// pinned) and how to turn it on; an unreadable pin is a warning.
func logUpdatePin(log *slog.Logger, dir string) {
	pin, err := update.ReadPin(dir)
	switch {
	case err != nil:
		log.Warn("auto-update is off: the release key pin is unreadable", "err", err)
	case pin == "":
		log.Info("auto-update is off: no release key pinned",
			"next_step", "as root: deskside-agent update pin FINGERPRINT --state "+dir+
				" (the fingerprint `deskside release keygen` printed), or DESKSIDE_RELEASE_KEY (RELEASEKEY for the MSI) at install")
	default:
		log.Info("auto-update is on", "release_key", pin)
	}
}
