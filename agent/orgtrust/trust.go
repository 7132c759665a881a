package orgtrust

import (
	"os"
	"path/filepath"
	"slices"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// policyStamp identifies a version of the policy file cheaply (a stat).
type policyStamp struct {
	exists  bool
	size    int64
	modTime time.Time
}

// Trust is what this endpoint enforces whatever its relay says, as the
// agent reports it (Hello and AgentMessage.endpoint_trust): the pinned
// organisation key, the local policy and groups, or why the policy file
// cannot be read. The policy file is read again only when a stat shows
// it changed, so calling Trust on every health tick is cheap.
func (g *Guard) Trust() *desksidev1.EndpointTrust {
	t := &desksidev1.EndpointTrust{OrgFingerprint: g.Pinned()}
	p, err := g.cachedPolicy()
	if err != nil {
		t.PolicyError = err.Error()
		return t
	}
	t.NoCommands, t.NoDesktop, t.Groups, t.AlwaysAsk = p.NoCommands, p.NoUnattended, slices.Clone(p.Groups), p.AlwaysAsk
	return t
}

func (g *Guard) cachedPolicy() (Policy, error) {
	var st policyStamp
	fi, err := os.Stat(filepath.Join(g.dir, PolicyFile))
	if err == nil {
		st = policyStamp{exists: true, size: fi.Size(), modTime: fi.ModTime()}
	}
	g.trustMu.Lock()
	defer g.trustMu.Unlock()
	if g.policyRead && st == g.policyStamp {
		return g.policy, g.policyErr
	}
	g.policy, g.policyErr = ReadPolicy(g.dir)
	g.policyStamp, g.policyRead = st, true
	return g.policy, g.policyErr
}
