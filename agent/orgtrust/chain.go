package orgtrust

// How an agent comes to pin the organisation key, and how the pin moves
// (docs/adr 22):
//   - given as root: `deskside-agent org pin FINGERPRINT`, or the fourth
//     part of the enrollment token (agent/enroll);
//   - an agent that pins nothing and never did (no pin from its token, or
//     from root) takes the first, self-signed statement of the chain its
//     relay sends, once: it obeys that relay already, so trusting the
//     relay's word for the key loses nothing, and from then on the relay
//     alone can no longer make it run anything;
//   - once pinned, the pin moves only along hand-overs signed by the
//     pinned key, in the order the chain gives them. Root on the endpoint
//     can pin another key with `deskside-agent org pin --replace FP`.
// Nothing goes back to the relay.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/internal/atomicfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

// PinSourceFile records how the pin came to be ("SOURCE FINGERPRINT
// TIME"). Once it exists the agent never takes a key from its relay's
// first statement again, even if org.pin is removed.
const PinSourceFile = "org.pin.source"

// Where a pin comes from.
const (
	SourceLocal    = "local"     // deskside-agent org pin, as root
	SourceToken    = "token"     // the enrollment token's fourth part
	SourceRelay    = "relay"     // the relay's first statement, to an agent that pinned nothing
	SourceHandOver = "hand-over" // a hand-over signed by the pinned key
)

// maxChain bounds the statements an agent looks at in one update.
const maxChain = 100

// PinFrom stores fingerprint as dir's pin and records source. The source
// is written first: a crash between the two leaves an agent that takes
// no key from its relay, never one that takes a second.
func PinFrom(dir, fingerprint, source string) error {
	fp, err := envelope.ParseFingerprint(fingerprint)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("%s %s %s\n", source, fp, time.Now().UTC().Format(time.RFC3339))
	if err := atomicfile.WriteFile(filepath.Join(dir, PinSourceFile), []byte(line), 0o600); err != nil {
		return err
	}
	return Pin(dir, fp)
}

// ReadPin returns dir's pinned fingerprint ("" for none) and how it was
// given ("" when unknown: pinned before sources were recorded, or never).
func ReadPin(dir string) (fingerprint, source string, err error) {
	if b, err := os.ReadFile(filepath.Join(dir, PinSourceFile)); err == nil {
		source, _, _ = strings.Cut(strings.TrimSpace(string(b)), " ")
		if source == "" {
			source = "unknown"
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, PinFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", source, nil
	case err != nil:
		return "", "", err
	}
	fp, err := envelope.ParseFingerprint(string(b))
	if err != nil {
		return "", "", fmt.Errorf("%s: %w; pin again with deskside-agent org pin --replace FINGERPRINT", PinFile, err)
	}
	return fp, source, nil
}

// current returns the verifier of the pinned key, nil when none.
func (g *Guard) current() *envelope.Verifier {
	g.pinMu.Lock()
	defer g.pinMu.Unlock()
	return g.verifier
}

// usePin makes fp the key envelopes are checked against: a new verifier
// with the nonces on disk, and only the revocation lists that key signed.
func (g *Guard) usePin(fp string) error {
	v := envelope.NewVerifier(fp, g.now)
	if prev := g.current(); prev != nil {
		// The nonces on disk go back to the agent's start: so may the
		// envelopes it accepts.
		v.Started = prev.Started
	}
	if err := g.loadNonces(v, g.now); err != nil {
		return err
	}
	v.Record = g.recordNonce
	v.Revocations = func() *desksidev1.RevocationListBody {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.revs
	}
	g.mu.Lock()
	g.revs = nil
	g.mu.Unlock()
	g.pinMu.Lock()
	g.verifier = v
	g.pinMu.Unlock()
	if raw, err := os.ReadFile(filepath.Join(g.dir, RevocationsFile)); err == nil {
		l := &desksidev1.RevocationList{}
		if proto.Unmarshal(raw, l) == nil {
			g.takeRevocations(l)
		}
	}
	return nil
}

// statement is a decoded statement body, not yet verified.
type statement struct {
	newFP, oldFP string // oldFP "" for a self-signed statement
}

func decode(s *desksidev1.OrgKeyStatement) (statement, bool) {
	b := &desksidev1.OrgKeyStatementBody{}
	if proto.Unmarshal(s.GetBody(), b) != nil || len(b.GetNewPublicKey()) == 0 {
		return statement{}, false
	}
	st := statement{newFP: envelope.Fingerprint(b.GetNewPublicKey())}
	if len(b.GetOldPublicKey()) > 0 {
		st.oldFP = envelope.Fingerprint(b.GetOldPublicKey())
	}
	return st, true
}

// OrgKeyUpdate takes the organisation key chain the relay sent (link
// calls it for RelayMessage.org_key_update). Everything in it is checked
// here; what does not verify against the pin is ignored and logged.
func (g *Guard) OrgKeyUpdate(u *desksidev1.OrgKeyUpdate) {
	g.updateMu.Lock()
	defer g.updateMu.Unlock()
	chain := u.GetStatements()
	if len(chain) == 0 {
		return
	}
	if len(chain) > maxChain {
		g.log.Warn("ignoring an organisation key chain longer than an agent accepts", "statements", len(chain), "max", maxChain)
		return
	}
	// The pin on disk is root's word: it wins over what this process
	// holds (deskside-agent org pin ran since the agent started).
	fp, source, err := ReadPin(g.dir)
	if err != nil {
		g.log.Error("ignoring the organisation key chain: cannot read the pin", "err", err)
		return
	}
	if fp != g.Pinned() {
		if fp == "" {
			g.log.Warn("the organisation key pin was removed on disk; the agent keeps the one it started with until it restarts", "pinned", g.Pinned())
			return
		}
		if err := g.usePin(fp); err != nil {
			g.log.Error("cannot use the organisation key pinned on disk", "fingerprint", fp, "err", err)
			return
		}
		g.log.Info("using the organisation key pinned on disk", "fingerprint", fp, "source", source)
	}
	start := 0
	if fp == "" {
		if source != "" {
			g.log.Warn("not pinning the relay's organisation key: this agent had a pin before; pin one as root with deskside-agent org pin FINGERPRINT",
				"source", source)
			return
		}
		first, ok := decode(chain[0])
		if !ok || first.oldFP != "" {
			g.log.Warn("ignoring an organisation key chain that does not start with a self-signed key")
			return
		}
		if _, err := envelope.VerifyOrgKey(first.newFP, chain[0]); err != nil {
			g.log.Warn("ignoring an organisation key chain whose first statement does not verify", "err", err)
			return
		}
		if err := PinFrom(g.dir, first.newFP, SourceRelay); err != nil {
			g.log.Error("cannot store the organisation key pin", "err", err)
			return
		}
		if err := g.usePin(first.newFP); err != nil {
			g.log.Error("cannot use the organisation key pin", "err", err)
			return
		}
		fp, start = first.newFP, 1
		g.log.Warn("pinned the organisation key the relay published (this agent pinned none, and obeyed its relay until now); "+
			"from now on it runs commands, actions and desktop sessions only with technicians' envelopes signed under that key. "+
			"Compare the fingerprint with the one deskside org init printed; to pin another as root: deskside-agent org pin --replace FINGERPRINT",
			"fingerprint", fp, "how", "the relay's first, self-signed statement")
	}
	was := fp
	for i := start; i < len(chain); i++ {
		st, ok := decode(chain[i])
		switch {
		case !ok:
			g.log.Warn("ignoring a malformed organisation key statement", "statement", i+1)
			continue
		case st.oldFP != fp:
			continue // history before the pin, or a statement of another key: below
		}
		next, err := envelope.VerifyOrgKey(fp, chain[i])
		if err != nil {
			g.log.Warn("ignoring a hand-over that names the pinned key but is not signed by it (a forged statement)", "statement", i+1, "pinned", fp, "err", err)
			continue
		}
		g.log.Info("organisation key handed over", "from", fp, "to", envelope.Fingerprint(next), "statement", i+1)
		fp = envelope.Fingerprint(next)
	}
	if last, ok := decode(chain[len(chain)-1]); ok && last.newFP != fp {
		g.log.Warn("ignoring the relay's organisation key statements that the pinned key did not sign", "pinned", fp, "relay_current", last.newFP)
	}
	if fp == was {
		return
	}
	if err := PinFrom(g.dir, fp, SourceHandOver); err != nil {
		g.log.Error("cannot store the organisation key pin; keeping the old one", "err", err)
		return
	}
	if err := g.usePin(fp); err != nil {
		g.log.Error("cannot use the new organisation key pin", "err", err)
		return
	}
	g.log.Warn("organisation key pin moved by a hand-over signed with the pinned key; envelopes certified by the old key are refused from now on", "from", was, "to", fp)
}
