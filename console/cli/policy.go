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

  mode           attended (the default): each remote session asks the
                 device's logged-in user first (Allow / Deny; no answer in
                 30 s denies); tier 1 may then view, tier 2 control.
                 unattended: sessions start without asking (tier 3 only).
                 notice: like unattended, but the user is told that a
                 session started.
                 group: the device follows its group's mode (--group).
  max sessions   how many remote sessions the device holds at once (1 to 16).

--unattended is --mode unattended, --no-unattended is --mode attended.
--group NAME --mode M sets the mode of the group's devices that follow it
(no device ID then). With no flag it prints the policy; a setting not
given keeps its value. Every change is audited.

Examples:
  deskside devices policy dev-0123
  deskside devices policy dev-0123 --mode notice --max-sessions 2
  deskside devices policy dev-0123 --no-unattended
  deskside devices policy --group lab --mode unattended`

// policyModes are the --mode names.
var policyModes = map[string]desksidev1.DesktopPolicyMode{
	"attended":   desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED,
	"unattended": desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED,
	"notice":     desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED_NOTICE,
	"group":      desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNSPECIFIED,
}

func (e *runEnv) devicesPolicy(args []string) error {
	fs := e.flags("devices policy", devicesPolicyHelp)
	unattended := fs.Bool("unattended", false, "allow remote sessions without the user's consent (--mode unattended)")
	noUnattended := fs.Bool("no-unattended", false, "ask the user's consent for every session (--mode attended)")
	modeArg := fs.String("mode", "", "`M`: attended, unattended, notice or group")
	group := fs.String("group", "", "set the mode of device group `NAME` instead of one device's")
	maxSessions := fs.Int("max-sessions", 0, "how many remote sessions at once, `N` from 1 to 16")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	n := 0
	for _, f := range []string{"unattended", "no-unattended", "mode"} {
		if set[f] {
			n++
		}
	}
	if n > 1 {
		return errUsage(fs, "pass one of --mode, --unattended and --no-unattended")
	}
	mode, ok := policyModes[*modeArg]
	if set["mode"] && !ok {
		return errUsage(fs, "--mode must be attended, unattended, notice or group")
	}
	if set["max-sessions"] && (*maxSessions < 1 || *maxSessions > maxSessionsLimit) {
		return errUsage(fs, "--max-sessions must be from 1 to %d", maxSessionsLimit)
	}
	if set["group"] {
		if len(pos) > 0 || !set["mode"] || set["max-sessions"] || mode == desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNSPECIFIED {
			return errUsage(fs, "--group NAME takes --mode attended, unattended or notice, and no device ID")
		}
		return e.groupPolicy(*group, mode, *modeArg)
	}
	switch {
	case len(pos) == 0:
		return errUsage(fs, "a device ID is required (see `deskside devices list`)")
	case len(pos) > 1:
		return errUsage(fs, "one device ID expected, got %d arguments", len(pos))
	}
	id := pos[0]

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
	limit := max(d.GetMaxSessions(), 1)
	if len(set) > 0 {
		req := &desksidev1.SetDevicePolicyRequest{DeviceId: d.GetId(), UnattendedAllowed: d.GetUnattendedAllowed(), MaxSessions: limit}
		// Only --max-sessions sends no mode: the device keeps its own.
		switch {
		case set["unattended"] && *unattended, set["no-unattended"] && !*noUnattended:
			req.Mode = desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED.Enum()
		case set["unattended"], set["no-unattended"]:
			req.Mode = desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED.Enum()
		case set["mode"]:
			req.Mode = mode.Enum()
		}
		if set["max-sessions"] {
			req.MaxSessions = uint32(*maxSessions)
		}
		if _, err := c.client.SetDevicePolicy(ctx, req); err != nil {
			return c.explain(err)
		}
		if resp, err = c.client.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: id}); err != nil {
			return c.explain(err)
		}
		d = resp.GetDevice()
	}
	out := e.output()
	verb := "has"
	if len(set) > 0 {
		verb = "has now"
	}
	fmt.Fprintf(out, "%s %s this remote access policy:\n", clean(d.GetId()), verb)
	kv(out, policyRows(d))
	return out.Flush()
}

// groupPolicy sets a device group's mode.
func (e *runEnv) groupPolicy(group string, mode desksidev1.DesktopPolicyMode, name string) error {
	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := e.rpcContext()
	defer cancel()
	if _, err := c.client.SetDevicePolicy(ctx, &desksidev1.SetDevicePolicyRequest{Group: group, Mode: mode.Enum()}); err != nil {
		return c.explain(err)
	}
	out := e.output()
	fmt.Fprintf(out, "Devices of group %s without a mode of their own are now %s.\n", clean(group), name)
	return out.Flush()
}

// modeText explains a remote-access mode.
func modeText(m desksidev1.DesktopPolicyMode) string {
	switch m {
	case desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED:
		return "unattended (sessions start without asking the user; tier 3)"
	case desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED_NOTICE:
		return "notice (sessions start without asking, and the user is told; tier 3)"
	}
	return "attended (each session asks the logged-in user first)"
}

// policyRows are a device's remote access settings for kv.
func policyRows(d *desksidev1.Device) [][2]string {
	u := "no"
	if d.GetUnattendedAllowed() {
		u = "allowed"
	}
	rows := [][2]string{{"Unattended access", u}}
	if d.GetDesktopMode() != desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNSPECIFIED {
		rows = append(rows, [2]string{"Remote access mode", modeText(d.GetDesktopMode())})
	}
	return append(rows, [2]string{"Sessions at once", strconv.FormatUint(uint64(max(d.GetMaxSessions(), 1)), 10)})
}
