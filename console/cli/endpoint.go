package cli

import (
	"fmt"
	"io"
	"strings"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// writeEndpoint is the "Endpoint" section of `devices show`: what the
// device enforces whatever the relay says, as its agent last reported
// it (docs/adr 22). kv cleans every value.
func writeEndpoint(w io.Writer, t *desksidev1.EndpointTrust) {
	section(w, "Endpoint (set on the device: deskside-agent policy)")
	if t == nil {
		fmt.Fprintln(w, "  Not reported yet: the agent reports it when it connects (agents before issue 11 never do).")
		return
	}
	pin := "not pinned: obeys the relay"
	if t.GetOrgFingerprint() != "" {
		pin = "pinned " + t.GetOrgFingerprint() + " (runs only technicians' signed requests)"
	}
	refused := func(off bool) string {
		if off || t.GetPolicyError() != "" {
			return "refused (set on the device: deskside-agent policy)"
		}
		return "allowed"
	}
	groups := "none"
	if len(t.GetGroups()) > 0 {
		groups = strings.Join(t.GetGroups(), ", ")
	}
	rows := [][2]string{
		{"Org key", pin},
		{"Commands and actions", refused(t.GetNoCommands())},
		{"Desktop sessions", refused(t.GetNoDesktop())},
		{"Consent", map[bool]string{true: "always asks the logged-in user (set on the device)", false: "as the relay's policy says"}[t.GetAlwaysAsk()]},
		{"Groups", groups},
	}
	if e := t.GetPolicyError(); e != "" {
		rows = append(rows, [2]string{"Policy error", e + " (everything privileged is refused until it is fixed)"})
	}
	kv(w, rows)
}

// endpointMarker is the devices list's short note of what a device
// refuses by its own policy: "" when nothing.
func endpointMarker(t *desksidev1.EndpointTrust) string {
	var m []string
	if t.GetPolicyError() != "" {
		return "policy error"
	}
	if t.GetNoCommands() {
		m = append(m, "no commands")
	}
	if t.GetNoDesktop() {
		m = append(m, "no desktop")
	}
	return strings.Join(m, ", ")
}

func cmpOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
