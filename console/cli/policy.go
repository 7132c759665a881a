package cli

import (
	"flag"
	"fmt"
	"strconv"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// maxSessionsLimit is the relay's ceiling for a device's max_sessions.
const maxSessionsLimit = 16

const devicesPolicyHelp = `
Shows or sets a device's remote access policy (setting it is for admins),
as the device page of the web console does:

  unattended     technicians (tier 2 and up) may view or control the device
                 without its user's consent. Consent prompts are not
                 available yet, so without it no remote session can start.
  max sessions   how many remote sessions the device holds at once (1 to 16).

With no flag it prints the policy; a setting not given keeps its value.
Every change is audited.

Examples:
  deskside devices policy dev-0123
  deskside devices policy dev-0123 --unattended --max-sessions 2
  deskside devices policy dev-0123 --no-unattended`

func (e *runEnv) devicesPolicy(args []string) error {
	fs := e.flags("devices policy", devicesPolicyHelp)
	unattended := fs.Bool("unattended", false, "allow remote sessions without the user's consent")
	noUnattended := fs.Bool("no-unattended", false, "require the user's consent (no remote session can start until consent prompts exist)")
	maxSessions := fs.Int("max-sessions", 0, "how many remote sessions at once, `N` from 1 to 16")
	id, err := parseID(fs, args)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["unattended"] && set["no-unattended"] {
		return errUsage(fs, "pass --unattended or --no-unattended, not both")
	}
	if set["max-sessions"] && (*maxSessions < 1 || *maxSessions > maxSessionsLimit) {
		return errUsage(fs, "--max-sessions must be from 1 to %d", maxSessionsLimit)
	}

	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := e.rpcContext()
	defer cancel()
	resp, err := c.client.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: id})
	if err != nil {
		return c.explain(err)
	}
	d := resp.GetDevice()
	allow, limit := d.GetUnattendedAllowed(), max(d.GetMaxSessions(), 1)
	if len(set) > 0 {
		switch {
		case set["unattended"]:
			allow = *unattended
		case set["no-unattended"]:
			allow = !*noUnattended
		}
		if set["max-sessions"] {
			limit = uint32(*maxSessions)
		}
		if _, err := c.client.SetDevicePolicy(ctx, &desksidev1.SetDevicePolicyRequest{
			DeviceId: d.GetId(), UnattendedAllowed: allow, MaxSessions: limit,
		}); err != nil {
			return c.explain(err)
		}
	}
	out := e.output()
	verb := "has"
	if len(set) > 0 {
		verb = "has now"
	}
	fmt.Fprintf(out, "%s %s this remote access policy:\n", clean(d.GetId()), verb)
	kv(out, policyRows(allow, limit))
	return out.Flush()
}

// policyRows are a device's remote access settings for kv.
func policyRows(unattended bool, maxSessions uint32) [][2]string {
	u := "no (remote sessions need the user's consent, which is not available yet)"
	if unattended {
		u = "allowed"
	}
	return [][2]string{
		{"Unattended access", u},
		{"Sessions at once", strconv.FormatUint(uint64(max(maxSessions, 1)), 10)},
	}
}
