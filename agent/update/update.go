// Package update installs signed agent releases and rolls them back
// (docs/adr 33). A release is an executable and a manifest signed by the
// release key this machine pins (release.pin in the state directory);
// nothing else, not the relay's key nor the organisation key, makes the
// agent run new code. Installing writes the new executable beside the
// running one, keeps the old one as EXE.previous, swaps them atomically
// and leaves a pending marker; the new version confirms itself once it
// reached its relay. If it starts too often without confirming, or the
// deadline passes, the agent restores EXE.previous by itself.
//
// Everything that reaches Install comes from the relay and is hostile:
// sizes are capped, the paths are fixed (next to the running executable
// and in the state directory), and the bytes are hashed before anything
// is renamed.
package update

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/deskside/deskside/internal/atomicfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

// Files in the state directory, and the suffixes of the files beside the
// executable.
const (
	PinFile      = "release.pin"
	PendingFile  = "update.pending"
	LastFile     = "update.last"
	PreviousExt  = ".previous"
	nextExt      = ".next"
	failedExt    = ".failed"
	MaxSize      = 256 << 20 // largest executable accepted
	maxStateFile = 4 << 10
)

// Defaults for Updater.
const (
	DefaultConfirmWithin = 5 * time.Minute
	DefaultMaxAttempts   = 3
)

// Errors.
var (
	ErrNoPin     = errors.New("auto-update is off: pin a release key (as root: deskside-agent update pin FINGERPRINT)")
	ErrOrgKey    = errors.New("the pinned release key is this machine's organisation key: release and organisation keys must differ (deskside release keygen)")
	ErrDowngrade = errors.New("release is not newer than the running version")
	ErrPlatform  = errors.New("release is for another platform")
	ErrContent   = errors.New("executable does not match the signed manifest")
	// ErrNoStart: the new executable, run with `version` before the
	// swap, did not start or did not say the signed version.
	ErrNoStart = errors.New("the new build does not start on this machine")
	// ErrRolledBack: the new version was replaced by the previous one;
	// the process must restart to run it.
	ErrRolledBack = errors.New("update rolled back")
)

// Pending is the marker an install leaves until the new version confirms.
type Pending struct {
	Version  string    `json:"version"`
	Previous string    `json:"previous"`
	Attempts int       `json:"attempts"`
	Deadline time.Time `json:"deadline"`
}

// Outcome states.
const (
	StateInstalled  = "installed"
	StateRolledBack = "rolled back"
)

// Outcome records how the last update ended (update.last).
type Outcome struct {
	Version string    `json:"version"`
	State   string    `json:"state"` // installed, rolled back
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// Updater installs releases for the executable Exe running Version, with
// its state in Dir.
type Updater struct {
	Dir     string
	Exe     string
	Version string
	// OrgPin is this machine's organisation key fingerprint, if any: a
	// release key equal to it is refused.
	OrgPin        string
	ConfirmWithin time.Duration
	MaxAttempts   int
	Now           func() time.Time
	// CheckStart runs the new executable with `version` before the swap:
	// it must exit 0 within StartTimeout and print "deskside-agent
	// VERSION" with the signed version. A build that dies before main
	// (in the runtime or an init), or cannot run here at all, is refused
	// while the running version is still in place: the start counter
	// could never see it, because it dies before it can count.
	CheckStart bool
}

// StartTimeout bounds the CheckStart run of a new executable.
const StartTimeout = 15 * time.Second

func (u *Updater) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now()
}

func (u *Updater) paths() (next, prev, pending, last string) {
	return u.Exe + nextExt, u.Exe + PreviousExt, filepath.Join(u.Dir, PendingFile), filepath.Join(u.Dir, LastFile)
}

// Pin records the release key fingerprint fp in dir.
func Pin(dir, fp string) error {
	fp, err := envelope.ParseFingerprint(fp)
	if err != nil {
		return errors.New("not a release key fingerprint (43 characters, as `deskside release keygen` printed it)")
	}
	return atomicfile.WriteFile(filepath.Join(dir, PinFile), []byte(fp+"\n"), 0o600)
}

// ReadPin returns the pinned release key fingerprint, "" when none.
func ReadPin(dir string) (string, error) {
	b, err := readSmall(filepath.Join(dir, PinFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	fp, err := envelope.ParseFingerprint(string(b))
	if err != nil {
		return "", fmt.Errorf("%s: %w; pin again as root: deskside-agent update pin FINGERPRINT", filepath.Join(dir, PinFile), err)
	}
	return fp, nil
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxStateFile {
		return nil, fmt.Errorf("%s: too large", path)
	}
	return b, nil
}

// Verify checks a signed release against the pin: signature, key, that
// the key is not the organisation key, platform, and that its version is
// newer than the running one.
func (u *Updater) Verify(r *desksidev1.SignedRelease) (*desksidev1.ReleaseManifest, error) {
	pin, err := ReadPin(u.Dir)
	if err != nil {
		return nil, err
	}
	if pin == "" {
		return nil, ErrNoPin
	}
	if u.OrgPin != "" && pin == u.OrgPin {
		return nil, ErrOrgKey
	}
	m, err := envelope.VerifyRelease(pin, r)
	if err != nil {
		return nil, err
	}
	if m.GetOs() != runtime.GOOS || m.GetArch() != runtime.GOARCH {
		return nil, fmt.Errorf("%w: %s/%s, this machine is %s/%s", ErrPlatform, m.GetOs(), m.GetArch(), runtime.GOOS, runtime.GOARCH)
	}
	if m.GetSize() > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrContent, m.GetSize(), MaxSize)
	}
	if !envelope.Newer(m.GetVersion(), u.Version) {
		return nil, fmt.Errorf("%w: %s offered, %s running", ErrDowngrade, m.GetVersion(), u.Version)
	}
	return m, nil
}

// Install verifies r, reads the executable from exe (at most the size
// the manifest signs), checks its hash, and swaps it in: the running
// executable stays as Exe.previous and a pending marker waits for the new
// version to confirm. The caller restarts the agent afterwards.
func (u *Updater) Install(r *desksidev1.SignedRelease, exe io.Reader) (*desksidev1.ReleaseManifest, error) {
	m, err := u.Verify(r)
	if err != nil {
		return nil, err
	}
	next, prev, pending, _ := u.paths()
	os.Remove(next)
	f, err := os.OpenFile(next, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o700)
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(next)
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(exe, int64(m.GetSize())+1))
	if err != nil {
		return nil, fmt.Errorf("update: write %s: %w", next, err)
	}
	if uint64(n) != m.GetSize() || string(h.Sum(nil)) != string(m.GetSha256()) {
		return nil, fmt.Errorf("%w (%d bytes received, %d signed)", ErrContent, n, m.GetSize())
	}
	if err := f.Chmod(0o755); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	if u.CheckStart {
		if err := checkStart(next, m.GetVersion()); err != nil {
			return nil, fmt.Errorf("%w: %v; %s keeps running", ErrNoStart, err, u.Version)
		}
	}
	p := Pending{Version: m.GetVersion(), Previous: u.Version, Deadline: u.now().Add(cmpDur(u.ConfirmWithin, DefaultConfirmWithin))}
	if err := writeJSON(pending, p); err != nil {
		return nil, err
	}
	if err := swap(u.Exe, next, prev); err != nil {
		os.Remove(pending)
		return nil, fmt.Errorf("update: swap executables: %w", err)
	}
	syncDir(filepath.Dir(u.Exe))
	ok = true
	return m, nil
}

// checkStart runs exe with `version` and a bare environment and checks
// that it says version.
func checkStart(exe, version string) error {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	var out *capped
	var err error
	// A file just written can be busy for a moment when another goroutine
	// forked while it was open (golang.org/issue/22315).
	for try := 0; ; try++ {
		cmd := exec.CommandContext(ctx, exe, "version")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		out = &capped{max: 4 << 10}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.WaitDelay = time.Second
		if err = cmd.Run(); !errors.Is(err, syscall.ETXTBSY) || try == 5 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	said := strings.TrimSpace(strings.ToValidUTF8(out.String(), "?"))
	if i := strings.IndexByte(said, '\n'); i >= 0 && err != nil {
		said = said[:i] // a panic's first line says what happened
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("`version` did not finish within %s", StartTimeout)
	case err != nil && said != "":
		return fmt.Errorf("`version` failed (%v): %q", err, said)
	case err != nil:
		return fmt.Errorf("`version` failed: %v", err)
	case said != "deskside-agent "+version:
		return fmt.Errorf("`version` printed %q, the release signs %s", said, version)
	}
	return nil
}

// capped keeps the first max bytes written to it.
type capped struct {
	max int
	b   []byte
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capped) String() string { return string(c.b) }

func cmpDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o600)
}

func readPending(path string) (*Pending, error) {
	b, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	p := &Pending{}
	if err := json.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Start runs first when the agent starts. With no pending update it does
// nothing. When this version is pending it counts the start; past
// MaxAttempts starts or the deadline it restores the previous executable
// and returns ErrRolledBack (the caller exits so the service manager, or
// a re-exec, runs the previous version). When another version is pending,
// this is the previous version running again: the marker is cleared.
func (u *Updater) Start() (*Pending, error) {
	_, prev, pending, _ := u.paths()
	p, err := readPending(pending)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		os.Remove(pending)
		return nil, err
	}
	if p.Version != u.Version {
		os.Remove(pending)
		u.record(Outcome{Version: p.Version, State: StateRolledBack, Reason: "the previous version " + u.Version + " is running"})
		return nil, nil
	}
	p.Attempts++
	switch {
	case p.Attempts > cmpInt(u.MaxAttempts, DefaultMaxAttempts):
		return p, u.rollback(prev, pending, p, fmt.Sprintf("started %d times without reaching the relay", p.Attempts-1))
	case u.now().After(p.Deadline):
		return p, u.rollback(prev, pending, p, "did not reach the relay before "+p.Deadline.UTC().Format(time.RFC3339))
	}
	return p, writeJSON(pending, p)
}

// Expired rolls back when this version is still pending after its
// deadline (the agent calls it when the deadline passes unconfirmed).
func (u *Updater) Expired() error {
	_, prev, pending, _ := u.paths()
	p, err := readPending(pending)
	if err != nil || p.Version != u.Version || !u.now().After(p.Deadline) {
		return nil
	}
	return u.rollback(prev, pending, p, "did not reach the relay before "+p.Deadline.UTC().Format(time.RFC3339))
}

func cmpInt(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func (u *Updater) rollback(prev, pending string, p *Pending, reason string) error {
	if _, err := os.Stat(prev); err != nil {
		os.Remove(pending)
		return fmt.Errorf("update: cannot roll back %s (%s): %w", p.Version, reason, err)
	}
	if err := restore(u.Exe, prev); err != nil {
		return fmt.Errorf("update: roll back %s (%s): %w", p.Version, reason, err)
	}
	syncDir(filepath.Dir(u.Exe))
	os.Remove(pending)
	u.record(Outcome{Version: p.Version, State: StateRolledBack, Reason: reason})
	return fmt.Errorf("%w: %s %s; %s runs again", ErrRolledBack, p.Version, reason, p.Previous)
}

// Confirm marks this version as installed once it reached the relay.
// It reports whether an update was pending.
func (u *Updater) Confirm() bool {
	_, _, pending, _ := u.paths()
	p, err := readPending(pending)
	if err != nil || p.Version != u.Version {
		return false
	}
	os.Remove(pending)
	u.record(Outcome{Version: u.Version, State: StateInstalled})
	return true
}

// Last returns how the last update ended, nil when none did.
func Last(dir string) *Outcome {
	b, err := readSmall(filepath.Join(dir, LastFile))
	if err != nil {
		return nil
	}
	o := &Outcome{}
	if json.Unmarshal(b, o) != nil {
		return nil
	}
	return o
}

func (u *Updater) record(o Outcome) {
	_, _, _, last := u.paths()
	o.At = u.now().UTC()
	o.Reason = strings.ToValidUTF8(o.Reason, "?")
	_ = writeJSON(last, o)
}
