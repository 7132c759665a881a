// Package endpointtrust is the relay's view of what each endpoint
// enforces whatever the relay says (docs/adr 22): the organisation key
// its agent pins, its local policy (`deskside-agent policy`) and the
// device groups set on it. The agent reports it; the relay treats the
// report as hostile (capped and cleaned before it is stored or shown),
// shows it to technicians, audits its changes and may refuse early a
// request the device would refuse anyway. The agent still decides.
package endpointtrust

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

// Caps on a report: more groups than MaxGroups are cut, each string is
// cleaned and cut to its cap.
const (
	MaxGroups         = 32
	MaxGroupRunes     = 64
	MaxFingerprint    = 128
	MaxPolicyErrRunes = 512
)

// Clean returns a copy of the agent's report t with at most MaxGroups
// non-empty, distinct groups and every string free of control and bidi
// characters and terminal escapes, within its cap; nil stays nil.
func Clean(t *desksidev1.EndpointTrust) *desksidev1.EndpointTrust {
	if t == nil {
		return nil
	}
	out := &desksidev1.EndpointTrust{
		OrgFingerprint: wire.CleanString(t.GetOrgFingerprint(), MaxFingerprint),
		NoCommands:     t.GetNoCommands(),
		NoDesktop:      t.GetNoDesktop(),
		AlwaysAsk:      t.GetAlwaysAsk(),
		PolicyError:    wire.CleanString(t.GetPolicyError(), MaxPolicyErrRunes),
	}
	seen := map[string]bool{}
	for _, g := range t.GetGroups() {
		if len(out.Groups) == MaxGroups {
			break
		}
		g = strings.TrimSpace(wire.CleanString(g, MaxGroupRunes))
		if g == "" || seen[g] {
			continue
		}
		seen[g] = true
		out.Groups = append(out.Groups, g)
	}
	return out
}

// Marshal encodes a cleaned report for the store.
func Marshal(t *desksidev1.EndpointTrust) []byte {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(t)
	if b == nil {
		b = []byte{} // reported, all defaults: not the same as never reported
	}
	return b
}

// Parse decodes what the store holds; nil for never reported (or
// unreadable, which Clean'd data never is). The result is cleaned again,
// so a row written by an older relay cannot bypass the caps.
func Parse(data []byte) *desksidev1.EndpointTrust {
	if data == nil {
		return nil
	}
	t := &desksidev1.EndpointTrust{}
	if proto.Unmarshal(data, t) != nil {
		return nil
	}
	return Clean(t)
}

// Describe is t in one line for the audit log.
func Describe(t *desksidev1.EndpointTrust) string {
	if t == nil {
		return "not reported"
	}
	var parts []string
	if t.GetOrgFingerprint() != "" {
		parts = append(parts, "org key "+t.GetOrgFingerprint())
	} else {
		parts = append(parts, "no org key pinned")
	}
	onOff := func(off bool) string {
		if off {
			return "refused"
		}
		return "allowed"
	}
	parts = append(parts, "commands "+onOff(t.GetNoCommands()), "desktop "+onOff(t.GetNoDesktop()))
	if t.GetAlwaysAsk() {
		parts = append(parts, "always asks the user")
	}
	if len(t.GetGroups()) > 0 {
		parts = append(parts, "groups "+strings.Join(t.GetGroups(), ","))
	} else {
		parts = append(parts, "no groups")
	}
	if t.GetPolicyError() != "" {
		parts = append(parts, "policy error: "+t.GetPolicyError())
	}
	return strings.Join(parts, ", ")
}

// Op is a privileged operation a device's local policy may refuse.
type Op int

const (
	Commands Op = iota // RunCommand
	Actions            // RunAction
	Desktop            // StartDesktop
)

// Refusal is why the device, by its last report, refuses op; "" when it
// does not (or never reported). The words match what the agent answers.
func Refusal(t *desksidev1.EndpointTrust, op Op) string {
	switch {
	case t == nil:
		return ""
	case t.GetPolicyError() != "":
		return fmt.Sprintf("this device's local policy cannot be read (%s), so it refuses everything privileged; fix it on the device with deskside-agent policy", t.GetPolicyError())
	case op != Desktop && t.GetNoCommands():
		return "this device's local policy turns off remote commands and actions (deskside-agent policy on the device)"
	case op == Desktop && t.GetNoDesktop():
		return "this device's local policy turns off remote-desktop sessions (deskside-agent policy on the device)"
	}
	return ""
}
