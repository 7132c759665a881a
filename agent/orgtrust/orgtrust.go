// Package orgtrust is what makes an agent obey technicians rather than
// its relay (docs/adr 22): the organisation key fingerprint pinned
// locally (`deskside-agent org pin`, as root), the newest revocation list
// signed by that key, the local policy (`deskside-agent policy`), and the
// check of every privileged request's signed envelope. Without a pin the
// agent behaves as before (relay-authorised).
package orgtrust

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/internal/atomicfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

// File names in the agent's state directory.
const (
	PinFile         = "org.pin"
	RevocationsFile = "org-revocations.pb"
	// NoncesFile keeps the nonces of accepted envelopes until they expire
	// (one "hex-nonce unix-nanos" line each), so a restart does not let
	// the relay replay an envelope it saw just before.
	NoncesFile = "nonces"
	PolicyFile = "policy.json"
)

// Policy is the endpoint's own policy; it wins over the relay's.
type Policy struct {
	// NoCommands refuses remote commands and actions.
	NoCommands bool `json:"no_commands"`
	// NoUnattended refuses remote-desktop sessions.
	NoUnattended bool `json:"no_unattended_desktop"`
	// Groups are the device groups set on the endpoint (never taken from
	// the relay, which could lie about them): a technician certificate
	// limited to groups runs only here when it names one of them.
	Groups []string `json:"groups,omitempty"`
	// AlwaysAsk makes every desktop session ask the logged-in user, even
	// when the relay sends an unattended mode (a relay's policy is its
	// admins' to change; this one is the device owner's).
	AlwaysAsk bool `json:"always_ask,omitempty"`
}

// Pin stores the organisation key fingerprint in dir.
func Pin(dir, fingerprint string) error {
	fp, err := envelope.ParseFingerprint(fingerprint)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, PinFile), []byte(fp+"\n"), 0o600)
}

// ReadPolicy reads dir's policy; none is the zero Policy.
func ReadPolicy(dir string) (Policy, error) {
	var p Policy
	b, err := os.ReadFile(filepath.Join(dir, PolicyFile))
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%s: %w; fix it or set it again with deskside-agent policy", PolicyFile, err)
	}
	if g, err := envelope.ParseGroups(strings.Join(p.Groups, ",")); err != nil || !slices.Equal(g, p.Groups) {
		return p, fmt.Errorf("%s: groups %q are not valid group names; set them again with deskside-agent policy --groups", PolicyFile, p.Groups)
	}
	return p, nil
}

// WritePolicy stores dir's policy.
func WritePolicy(dir string, p Policy) error {
	b, _ := json.MarshalIndent(p, "", "  ")
	return atomicfile.WriteFile(filepath.Join(dir, PolicyFile), append(b, '\n'), 0o644)
}

// Guard checks relay requests on one agent.
type Guard struct {
	dir      string
	deviceID string
	log      *slog.Logger
	now      func() time.Time

	// pinMu guards verifier, which an organisation key hand-over replaces
	// (chain.go); updateMu orders the updates.
	pinMu    sync.Mutex
	verifier *envelope.Verifier // nil: no pin
	updateMu sync.Mutex

	mu   sync.Mutex
	revs *desksidev1.RevocationListBody
	// nonces is the nonce file, open for appending once a nonce was
	// recorded (recordNonce); syncing is set while a background fsync of
	// it is due.
	nonces  *os.File
	syncing atomic.Bool

	// The policy as Trust last read it (trust.go).
	trustMu     sync.Mutex
	policyRead  bool
	policyStamp policyStamp
	policy      Policy
	policyErr   error
}

// Open loads dir's pin, revocation list and policy for device deviceID.
func Open(dir, deviceID string, log *slog.Logger, now func() time.Time) (*Guard, error) {
	g := &Guard{dir: dir, deviceID: deviceID, log: log, now: now}
	if _, err := ReadPolicy(dir); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, PinFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return g, nil
	case err != nil:
		return nil, err
	}
	fp, err := envelope.ParseFingerprint(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w; pin again with deskside-agent org pin FINGERPRINT", PinFile, err)
	}
	if err := g.usePin(fp); err != nil {
		return nil, err
	}
	return g, nil
}

// Pinned returns the pinned fingerprint, "" if none.
func (g *Guard) Pinned() string {
	if v := g.current(); v != nil {
		return v.OrgFingerprint
	}
	return ""
}

// takeRevocations keeps l when it is signed by the pinned key and newer
// than the list held.
func (g *Guard) takeRevocations(l *desksidev1.RevocationList) {
	pinned := g.Pinned()
	if l == nil || pinned == "" {
		return
	}
	b := &desksidev1.RevocationListBody{}
	if proto.Unmarshal(l.GetBody(), b) != nil || envelope.Fingerprint(b.GetOrgPublicKey()) != pinned {
		g.log.Warn("ignoring a revocation list not signed by the pinned organisation key")
		return
	}
	b, err := envelope.ParseRevocations(b.GetOrgPublicKey(), l)
	if err != nil {
		g.log.Warn("ignoring a revocation list", "err", err)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.revs != nil && b.GetSerial() <= g.revs.GetSerial() {
		return
	}
	g.revs = b
	raw, _ := proto.Marshal(l)
	if err := atomicfile.WriteFile(filepath.Join(g.dir, RevocationsFile), raw, 0o600); err != nil {
		g.log.Error("could not store the revocation list", "err", err)
	}
}

// Check decides whether the agent may run relay request m. A nil answer
// lets it run; an error is the refusal, to report to the relay.
func (g *Guard) Check(m *desksidev1.RelayMessage) error {
	var op proto.Message
	var desktop bool
	switch b := m.GetBody().(type) {
	case *desksidev1.RelayMessage_RunCommand:
		op = b.RunCommand
	case *desksidev1.RelayMessage_RunAction:
		op = b.RunAction
	case *desksidev1.RelayMessage_StartDesktop:
		op, desktop = &desksidev1.DesktopOperation{Control: b.StartDesktop.GetControl(), Monitor: b.StartDesktop.GetMonitor(), ViewerFingerprint: b.StartDesktop.GetViewerFingerprint(), TicketCode: b.StartDesktop.GetTicketCode()}, true
	default:
		return nil
	}
	// The policy is read for every request, so a change applies at once;
	// a policy that cannot be read refuses.
	p, err := ReadPolicy(g.dir)
	if err != nil {
		return g.refused(m, "local policy: "+err.Error())
	}
	if !desktop && p.NoCommands {
		return g.refused(m, "this device's local policy turns off remote commands and actions (deskside-agent policy on the device)")
	}
	if desktop && p.NoUnattended {
		return g.refused(m, "this device's local policy turns off remote-desktop sessions (deskside-agent policy on the device)")
	}
	if sd, ok := m.GetBody().(*desksidev1.RelayMessage_StartDesktop); ok && p.AlwaysAsk {
		if mode := sd.StartDesktop.GetPolicyMode(); mode != desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED {
			g.log.Info("the relay's policy does not ask the user; this device's own policy does (deskside-agent policy --consent always)", "mode", mode.String())
		}
		sd.StartDesktop.PolicyMode = desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED
	}
	ver := g.current()
	if ver == nil {
		return nil
	}
	g.takeRevocations(m.GetRevocations())
	v, err := ver.Verify(envelope.Request{Op: op, Envelope: m.GetEnvelope(), Proof: m.GetDeviceProof(), DeviceID: g.deviceID, DeviceGroups: p.Groups})
	if err != nil {
		return g.refused(m, err.Error())
	}
	g.log.Info("signed request accepted", "technician", v.Technician, "tier", envelope.TierName(v.Tier), "request", fmt.Sprintf("%T", m.GetBody()))
	if sd, ok := m.GetBody().(*desksidev1.RelayMessage_StartDesktop); ok {
		g.stampDesktop(sd.StartDesktop, v)
	}
	return nil
}

// stampDesktop makes a signed session's consent prompt name the
// certificate's technician and tier, not what the relay says, and asks
// the user whenever the certificate's tier is below tier 3: the relay
// chooses the policy mode, and a relay that calls a device unattended
// must not skip the prompt for a technician whose tier cannot open
// unattended sessions (docs/adr 28).
func (g *Guard) stampDesktop(sd *desksidev1.StartDesktop, v *envelope.Verified) {
	sd.TechnicianName = v.Technician
	sd.TechnicianTier = 1
	switch {
	case envelope.AtLeast(v.Tier, desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER3):
		sd.TechnicianTier = 3
	case envelope.AtLeast(v.Tier, desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2):
		sd.TechnicianTier = 2
	}
	if sd.TechnicianTier < 3 && sd.GetPolicyMode() != desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED {
		if sd.GetPolicyMode() != desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNSPECIFIED {
			g.log.Warn("the relay asked for a session without consent from a technician below tier 3; asking the user", "technician", v.Technician)
		}
		sd.PolicyMode = desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED
	}
}

func (g *Guard) refused(m *desksidev1.RelayMessage, reason string) error {
	g.log.Warn("request refused", "reason", reason, "request", fmt.Sprintf("%T", m.GetBody()), "id", m.GetId())
	return errors.New("refused by the device: " + reason)
}

// loadNonces reads the nonces that have not expired back into the
// verifier and rewrites the file without the expired ones.
func (g *Guard) loadNonces(v *envelope.Verifier, now func() time.Time) error {
	if now == nil {
		now = time.Now
	}
	// Under g.mu from reading to replacing, so that no nonce recorded
	// meanwhile is lost; the file is replaced, so appends go to the new one.
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.nonces != nil {
		g.nonces.Close()
		g.nonces = nil
	}
	path := filepath.Join(g.dir, NoncesFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read %s: %w (the agent refuses to forget which envelopes it ran)", path, err)
	}
	var keep []string
	t := now()
	for _, line := range strings.Split(string(raw), "\n") {
		hexNonce, nanos, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue // a torn last line
		}
		nonce, err1 := hex.DecodeString(hexNonce)
		n, err2 := strconv.ParseInt(nanos, 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if until := time.Unix(0, n); until.After(t) {
			v.Remember(nonce, until)
			keep = append(keep, line)
		}
	}
	data := strings.Join(keep, "\n")
	if data != "" {
		data += "\n"
	}
	return atomicfile.WriteFile(path, []byte(data), 0o600)
}

// recordNonce appends an accepted envelope's nonce to the nonce file
// before the request runs, in one write to a file the guard keeps open
// (opening it for every request cost more than the write). The write
// reaches the kernel before the request runs, so an agent that crashes or
// restarts reads it back; the fsync that makes it survive a power loss
// runs in the background (syncNonces), off the dispatch path (docs/adr
// 22: an fsync costs milliseconds on a slow disk, and a replay across a
// power loss also needs an envelope dated ahead of the agent's clock and
// a reboot within the clock skew).
func (g *Guard) recordNonce(nonce []byte, until time.Time) error {
	line := fmt.Appendf(nil, "%x %d\n", nonce, until.UnixNano())
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.nonces == nil {
		f, err := os.OpenFile(filepath.Join(g.dir, NoncesFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		g.nonces = f
	}
	if _, err := g.nonces.Write(line); err != nil {
		// Open it again next time: the file may have been replaced.
		g.nonces.Close()
		g.nonces = nil
		return err
	}
	if g.syncing.CompareAndSwap(false, true) {
		go g.syncNonces(g.nonces)
	}
	return nil
}

// Close closes the nonce file the guard keeps open; a nonce recorded
// later opens it again.
func (g *Guard) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.nonces == nil {
		return nil
	}
	err := g.nonces.Close()
	g.nonces = nil
	return err
}

// syncNonces flushes the nonce file to disk; writes made while it runs
// start another. f may be closed meanwhile by loadNonces, which replaced
// the file with one already synced.
func (g *Guard) syncNonces(f *os.File) {
	g.syncing.Store(false)
	if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
		g.log.Error("could not sync the nonce file", "err", err)
	}
}
