package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/deskside/deskside/agent/orgtrust"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/proto/wire/envelope"
)

func cmdOrg(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "pin" {
		return errors.New("usage: deskside-agent org pin [--replace] FINGERPRINT [--state DIR] (the fingerprint `deskside org init` printed)")
	}
	fs := newFlags("org pin", stderr)
	state := fs.String("state", DefaultStateDir(), "state directory")
	replace := fs.Bool("replace", false, "replace the key this machine pins (its relay cannot; only root here, or a hand-over signed by the pinned key)")
	rest := args[1:]
	var fp string
	// A fingerprint may start with "-" (base64url): take it out before
	// the flags are parsed, wherever it is.
	for i, a := range rest {
		if _, err := wire.ParsePin(a); strings.HasPrefix(a, "-") && err == nil && (i == 0 || rest[i-1] != "--state" && rest[i-1] != "-state") {
			fp, rest = a, append(rest[:i:i], rest[i+1:]...)
			break
		}
	}
	if fp == "" && len(rest) > 0 && len(rest[0]) > 0 && rest[0][0] != '-' {
		fp, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if fp == "" && fs.NArg() > 0 {
		// Flags may come before and after the fingerprint.
		fp = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if fs.NArg() > 0 {
		return errors.New("usage: deskside-agent org pin [--replace] FINGERPRINT [--state DIR]")
	}
	cur, source, err := orgtrust.ReadPin(*state)
	if err != nil {
		return fmt.Errorf("%w (run as root, with the state directory of the agent)", err)
	}
	if want, err := envelope.ParseFingerprint(fp); err == nil && cur != "" && cur != want && !*replace {
		how := ""
		if source != "" {
			how = " (pinned by: " + source + ")"
		}
		return fmt.Errorf("this machine pins organisation key %s%s; to pin %s instead, run as root: deskside-agent org pin --replace %s", cur, how, want, want)
	}
	if err := orgtrust.PinFrom(*state, fp, orgtrust.SourceLocal); err != nil {
		return fmt.Errorf("%w (run as root, with the state directory of the agent)", err)
	}
	fmt.Fprintf(stdout, "Pinned organisation key %s.\nFrom now on this machine runs commands, actions and desktop sessions only with a technician's envelope signed under that key.\nRestart the agent to apply it: deskside-agent restart\n", fp)
	return nil
}

func cmdPolicy(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("policy", stderr)
	state := fs.String("state", DefaultStateDir(), "state directory")
	commands := fs.String("commands", "", "on or off: remote commands and actions")
	desktop := fs.String("desktop", "", "on or off: remote-desktop sessions")
	consent := fs.String("consent", "", "always: every remote-desktop session asks the logged-in user, whatever the relay's policy says; relay: follow the relay's policy (default)")
	groups := fs.String("groups", "", "comma-separated device groups of this machine (technician certificates limited to groups run only where one of them is set); \"none\" clears them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := orgtrust.ReadPolicy(*state)
	if err != nil {
		if *commands == "" && *desktop == "" && *groups == "" && *consent == "" {
			return err
		}
		// Repairing a broken file starts from what it enforces: nothing
		// privileged runs.
		fmt.Fprintf(stderr, "%v\nreplacing it; what is not set now stays off\n", err)
		p = orgtrust.Policy{NoCommands: true, NoUnattended: true}
	}
	set := func(v string, off *bool) error {
		switch v {
		case "":
			return nil
		case "on":
			*off = false
		case "off":
			*off = true
		default:
			return fmt.Errorf("%q: use on or off", v)
		}
		return nil
	}
	if err := errors.Join(set(*commands, &p.NoCommands), set(*desktop, &p.NoUnattended)); err != nil {
		return err
	}
	switch *consent {
	case "":
	case "always":
		p.AlwaysAsk = true
	case "relay":
		p.AlwaysAsk = false
	default:
		return fmt.Errorf("--consent %q: use always or relay", *consent)
	}
	switch *groups {
	case "":
	case "none":
		p.Groups = nil
	default:
		g, err := envelope.ParseGroups(*groups)
		if err != nil {
			return fmt.Errorf("--groups: %w", err)
		}
		p.Groups = g
	}
	if *commands != "" || *desktop != "" || *groups != "" || *consent != "" {
		if err := orgtrust.WritePolicy(*state, p); err != nil {
			return fmt.Errorf("%w (run as root)", err)
		}
	}
	onOff := func(off bool) string {
		if off {
			return "off (refused whatever the relay says)"
		}
		return "on"
	}
	pin, source, err := orgtrust.ReadPin(*state)
	switch {
	case err != nil:
		pin = "unreadable (" + err.Error() + ")"
	case pin == "":
		pin = "none: the agent obeys the relay (deskside-agent org pin FINGERPRINT)"
	case source != "":
		pin += " (from " + source + ")"
	}
	gs := "none"
	if len(p.Groups) > 0 {
		gs = strings.Join(p.Groups, ", ")
	}
	ask := "as the relay's policy says (attended, unattended or with notice)"
	if p.AlwaysAsk {
		ask = "always asks the logged-in user, whatever the relay says"
	}
	fmt.Fprintf(stdout, "remote commands and actions: %s\nremote-desktop sessions:     %s\nconsent:                     %s\ndevice groups:               %s\norganisation key pinned:     %s\n",
		onOff(p.NoCommands), onOff(p.NoUnattended), ask, gs, pin)
	return nil
}
