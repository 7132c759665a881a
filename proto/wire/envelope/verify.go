package envelope

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

// Refusal is why an agent will not run an envelope's request.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

func refuse(format string, a ...any) error { return &Refusal{Reason: fmt.Sprintf(format, a...)} }

// Request is what reached the agent: the operation the relay asked for,
// with the envelope, proof and device id it is checked against.
type Request struct {
	// Op is the *RunCommand, *RunAction or *DesktopOperation the relay
	// asked this device to run.
	Op       proto.Message
	Envelope *desksidev1.SignedEnvelope
	Proof    *desksidev1.DeviceProof
	DeviceID string
	// DeviceGroups are the groups set on the endpoint itself
	// (`deskside-agent policy --groups`), never the relay's: a
	// certificate limited to groups is accepted only when one of its
	// groups is here.
	DeviceGroups []string
}

// Verified describes an envelope that passed.
type Verified struct {
	Technician string
	Tier       desksidev1.TechnicianTier
	Groups     []string
}

// Verifier checks envelopes against a pinned organisation key. It keeps
// the nonces it has seen until their envelope expires; envelopes issued
// before Started are refused, so a restart does not forget a nonce that
// could still be replayed.
type Verifier struct {
	// OrgFingerprint is the pinned organisation key's fingerprint.
	OrgFingerprint string
	// Revocations returns the newest verified revocation list, or nil.
	Revocations func() *desksidev1.RevocationListBody
	Now         func() time.Time
	// Started is when the nonce memory began (the agent's start).
	Started time.Time
	// Record, if set, stores a newly accepted nonce until its deadline
	// (the agent's nonce file), so that a restart does not forget it;
	// when it fails the envelope is refused, since its replay could not
	// be caught after a restart.
	Record func(nonce []byte, until time.Time) error

	mu     sync.Mutex
	nonces map[string]time.Time

	// certs are the certificates whose organisation signature this
	// verifier checked, by their exact bytes, most recently used first:
	// an agent sees the same few technicians' certificates on every
	// request, and that signature check is half the cost of verifying an
	// envelope. Only the signature check is remembered; the pin,
	// validity and revocation are checked on every request, and a new
	// pin makes a new Verifier.
	certMu sync.Mutex
	certs  []checkedCert
}

// maxCheckedCerts bounds Verifier.certs.
const maxCheckedCerts = 8

// checkedCert is a certificate whose signature verified under the
// organisation key it names, with its body.
type checkedCert struct {
	body, sig []byte
	parsed    *desksidev1.TechnicianCertificateBody
}

// certificate returns c's body: from certs when exactly these bytes
// verified before (Ed25519 verification depends only on the key, which
// the body names, the body and the signature), else ParseCertificate.
// The body returned is shared: read it, never change it.
func (v *Verifier) certificate(c *desksidev1.TechnicianCertificate) (*desksidev1.TechnicianCertificateBody, error) {
	body, sig := c.GetBody(), c.GetSignature()
	v.certMu.Lock()
	defer v.certMu.Unlock()
	for i, e := range v.certs {
		if bytes.Equal(e.body, body) && bytes.Equal(e.sig, sig) {
			copy(v.certs[1:i+1], v.certs[:i])
			v.certs[0] = e
			return e.parsed, nil
		}
	}
	b, err := ParseCertificate(c)
	if err != nil {
		return nil, err
	}
	// Only certificates of the pinned key are worth keeping; any other
	// is refused right after this.
	if Fingerprint(b.GetOrgPublicKey()) == v.OrgFingerprint {
		v.certs = slices.Insert(v.certs, 0, checkedCert{body: bytes.Clone(body), sig: bytes.Clone(sig), parsed: b})
		v.certs = v.certs[:min(len(v.certs), maxCheckedCerts)]
	}
	return b, nil
}

// NewVerifier returns a Verifier for the pinned fingerprint.
func NewVerifier(fingerprint string, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{OrgFingerprint: fingerprint, Now: now, Started: now().Add(-time.Second)}
}

// tiers lists the tiers from least to most: a tier's rank is its place
// here, not its enum number (TIER3 was added after ADMIN).
var tiers = []desksidev1.TechnicianTier{
	desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER1,
	desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2,
	desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER3,
	desksidev1.TechnicianTier_TECHNICIAN_TIER_ADMIN,
}

// Rank orders tiers: 0 for none (or unknown), then 1 for tier1 up to 4
// for admin.
func Rank(t desksidev1.TechnicianTier) int {
	return slices.Index(tiers, t) + 1
}

// AtLeast reports whether tier ranks at or above min.
func AtLeast(tier, min desksidev1.TechnicianTier) bool {
	return Rank(tier) > 0 && Rank(tier) >= Rank(min)
}

// Allows reports whether tier may run op on one device.
func Allows(tier desksidev1.TechnicianTier, op proto.Message) bool {
	return AllowsOn(tier, op, 1)
}

// AllowsOn reports whether tier may run op signed for devices devices:
// view-only desktop from tier1; commands, actions and control from
// tier2; a command signed for more than one device from tier3.
func AllowsOn(tier desksidev1.TechnicianTier, op proto.Message, devices uint32) bool {
	switch o := op.(type) {
	case *desksidev1.DesktopOperation:
		if !o.GetControl() {
			return AtLeast(tier, desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER1)
		}
	case *desksidev1.RunCommand:
		if devices > 1 {
			return AtLeast(tier, desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER3)
		}
	}
	return AtLeast(tier, desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2)
}

func opName(op proto.Message) string {
	switch o := op.(type) {
	case *desksidev1.RunCommand:
		return "commands"
	case *desksidev1.RunAction:
		return "actions"
	case *desksidev1.DesktopOperation:
		if o.GetControl() {
			return "desktop control"
		}
		return "desktop view"
	}
	return fmt.Sprintf("%T", op)
}

// Verify checks r in this order: the certificate chains to the pinned
// organisation key, is valid now and not revoked; the envelope is signed
// by the certified key; the tier allows the operation; the signed
// operation is exactly the one requested, and a desktop operation names
// the viewer's DTLS fingerprint; the device is in the signed list; a
// certificate limited to groups shares one with Request.DeviceGroups; the
// envelope is within its validity (with Skew) and its nonce is new. The
// nonce is recorded only when everything passed.
func (v *Verifier) Verify(r Request) (*Verified, error) {
	env := r.Envelope
	if env == nil {
		return nil, refuse("this device pins an organisation key and runs %s only with a technician's signed envelope; sign in with a certified technician key (deskside technician status)", opName(r.Op))
	}
	cert, err := v.certificate(env.GetCertificate())
	if err != nil {
		return nil, refuse("%v", err)
	}
	if Fingerprint(cert.GetOrgPublicKey()) != v.OrgFingerprint {
		return nil, refuse("technician certificate of %q is not signed by the organisation key this device pins (%s)", cert.GetTechnician(), v.OrgFingerprint)
	}
	now := v.Now()
	if nb := cert.GetNotBefore(); nb != nil && now.Add(Skew).Before(nb.AsTime()) {
		return nil, refuse("technician certificate of %q is not valid before %s", cert.GetTechnician(), nb.AsTime().UTC().Format(time.RFC3339))
	}
	if now.After(cert.GetNotAfter().AsTime().Add(Skew)) {
		return nil, refuse("technician certificate of %q expired at %s; an admin renews it (deskside technician certify)", cert.GetTechnician(), cert.GetNotAfter().AsTime().UTC().Format(time.RFC3339))
	}
	if v.Revocations != nil && Revoked(v.Revocations(), cert) {
		return nil, refuse("technician %q is revoked by the organisation", cert.GetTechnician())
	}
	if !verify(cert.GetPublicKey(), ctxEnvelope, env.GetBody(), env.GetSignature()) {
		return nil, refuse("envelope is not signed by the key certified for %q", cert.GetTechnician())
	}
	b := &desksidev1.EnvelopeBody{}
	if err := proto.Unmarshal(env.GetBody(), b); err != nil {
		return nil, refuse("envelope: %v", err)
	}
	if !AllowsOn(cert.GetTier(), r.Op, b.GetDeviceCount()) {
		what := opName(r.Op)
		if b.GetDeviceCount() > 1 {
			what = fmt.Sprintf("%s signed for %d devices", what, b.GetDeviceCount())
		}
		return nil, refuse("technician %q is %s, which may not run %s", cert.GetTechnician(), tierName(cert.GetTier()), what)
	}
	var signed proto.Message
	switch o := b.GetOperation().(type) {
	case *desksidev1.EnvelopeBody_Command:
		signed = o.Command
	case *desksidev1.EnvelopeBody_Action:
		signed = o.Action
	case *desksidev1.EnvelopeBody_Desktop:
		signed = o.Desktop
	}
	if signed == nil || !proto.Equal(signed, r.Op) {
		return nil, refuse("the request differs from what technician %q signed", cert.GetTechnician())
	}
	if d, ok := r.Op.(*desksidev1.DesktopOperation); ok {
		// The agent completes the session only with an answer carrying
		// this fingerprint (agent/desktop/session): without it a relay
		// could answer the agent's offer in the signing viewer's place.
		if d.GetViewerFingerprint() == "" {
			return nil, refuse("the viewer did not bind its DTLS certificate to the session technician %q signed; update the console", cert.GetTechnician())
		}
		if _, _, err := wire.ParseDTLSFingerprint(d.GetViewerFingerprint()); err != nil {
			return nil, refuse("the viewer fingerprint technician %q signed is malformed (%v); update the console", cert.GetTechnician(), err)
		}
	}
	if !VerifyProof(b.GetDevicesRoot(), b.GetDeviceCount(), r.DeviceID, r.Proof) {
		return nil, refuse("the envelope of technician %q is not for this device", cert.GetTechnician())
	}
	if g := cert.GetGroups(); len(g) > 0 && !slices.ContainsFunc(g, func(x string) bool { return slices.Contains(r.DeviceGroups, x) }) {
		in := "no group"
		if len(r.DeviceGroups) > 0 {
			in = fmt.Sprintf("%v", r.DeviceGroups)
		}
		return nil, refuse("technician %q is limited to groups %v; this device is in %s (deskside-agent policy --groups on the device)", cert.GetTechnician(), g, in)
	}
	issued, expires := b.GetIssuedAt().AsTime(), b.GetExpiresAt().AsTime()
	switch {
	case b.GetIssuedAt() == nil || b.GetExpiresAt() == nil || expires.Sub(issued) > MaxLifetime:
		return nil, refuse("envelope validity is missing or longer than %s", MaxLifetime)
	case now.After(expires.Add(Skew)):
		return nil, refuse("envelope expired at %s (now %s); sign the request again", expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case issued.After(now.Add(Skew)):
		return nil, refuse("envelope issued at %s is in the future; check the clocks of the technician and this device", issued.UTC().Format(time.RFC3339))
	case issued.Before(v.Started):
		return nil, refuse("envelope issued before this agent started; sign the request again")
	case len(b.GetNonce()) < 16:
		return nil, refuse("envelope nonce is missing")
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.nonces == nil {
		v.nonces = make(map[string]time.Time)
	}
	for n, exp := range v.nonces {
		if now.After(exp) {
			delete(v.nonces, n)
		}
	}
	if _, seen := v.nonces[string(b.GetNonce())]; seen {
		return nil, refuse("envelope of technician %q was already used (replay)", cert.GetTechnician())
	}
	until := expires.Add(2 * Skew)
	if v.Record != nil {
		if err := v.Record(b.GetNonce(), until); err != nil {
			return nil, refuse("this device cannot record the envelope's nonce (%v); free space on its disk, then sign the request again", err)
		}
	}
	v.nonces[string(b.GetNonce())] = until
	return &Verified{Technician: cert.GetTechnician(), Tier: cert.GetTier(), Groups: slices.Clone(cert.GetGroups())}, nil
}

func tierName(t desksidev1.TechnicianTier) string {
	switch t {
	case desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER1:
		return "tier1"
	case desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2:
		return "tier2"
	case desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER3:
		return "tier3"
	case desksidev1.TechnicianTier_TECHNICIAN_TIER_ADMIN:
		return "admin"
	}
	return "without a tier"
}

// ParseTier reads "tier1", "tier2", "tier3" or "admin".
func ParseTier(s string) (desksidev1.TechnicianTier, error) {
	for _, t := range tiers {
		if tierName(t) == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("role %q: use tier1, tier2, tier3 or admin", s)
}

// TierName names a tier as ParseTier reads it.
func TierName(t desksidev1.TechnicianTier) string { return tierName(t) }

// MaxGroups and MaxGroupLen bound the device groups of an endpoint and of
// a certificate.
const (
	MaxGroups   = 32
	MaxGroupLen = 64
)

var groupName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ParseGroups reads a comma-separated list of device group names (letters,
// digits, '.', '_' and '-', starting with a letter or digit), without
// duplicates; "" is no group.
func ParseGroups(s string) ([]string, error) {
	var out []string
	for _, g := range strings.Split(s, ",") {
		g = strings.TrimSpace(g)
		switch {
		case g == "" && s == "":
			continue
		case len(g) > MaxGroupLen || !groupName.MatchString(g):
			return nil, fmt.Errorf("group %q: use up to %d letters, digits, '.', '_' or '-', starting with a letter or digit", g, MaxGroupLen)
		case slices.Contains(out, g):
			continue
		}
		out = append(out, g)
	}
	if len(out) > MaxGroups {
		return nil, fmt.Errorf("%d groups: at most %d", len(out), MaxGroups)
	}
	return out, nil
}

// Remember adds a nonce seen before (read back from the agent's nonce
// file at start) until its deadline.
func (v *Verifier) Remember(nonce []byte, until time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.nonces == nil {
		v.nonces = make(map[string]time.Time)
	}
	v.nonces[string(nonce)] = until
}
