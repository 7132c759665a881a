package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const actionHelp = `
Runs a remediation action on a connected device (role tier2 or above) and
prints the agent's result. Exits 1 when the action failed.

Actions:
  kill PID          end process PID and its child processes: SIGTERM, then
                    SIGKILL after a grace period (on Windows, the tree ends)
  restart SERVICE   restart a system service (systemd unit, launchd job or
                    Windows service)
  flush-dns         clear the resolver cache
  reboot            restart the machine after --delay (at least 1m), telling
                    the logged-in users why with --message

Examples:
  deskside action dev-0123 kill 4242
  deskside action dev-0123 restart cups
  deskside action dev-0123 reboot --delay 10m --message "Installing updates"`

// actionTimeout bounds a RunAction call; the relay gives the agent 60 s.
const actionTimeout = 90 * time.Second

// maxRebootMessage is the agent's cap on a reboot message (runes).
const maxRebootMessage = 200

func (e *runEnv) action(args []string) error {
	fs := e.flags("action", actionHelp)
	delay := fs.Duration("delay", 5*time.Minute, "reboot: time the users get to save their work (1m to 24h)")
	message := fs.String("message", "", "reboot: `TEXT` shown to the logged-in users")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch len(pos) {
	case 0:
		return errUsage(fs, "a device ID and an action are required")
	case 1:
		return errUsage(fs, "an action is required: kill PID, restart SERVICE, flush-dns or reboot")
	}
	id, verb, rest := pos[0], pos[1], pos[2:]
	rebootFlags := false
	fs.Visit(func(f *flag.Flag) { rebootFlags = rebootFlags || f.Name == "delay" || f.Name == "message" })
	if rebootFlags && verb != "reboot" {
		return errUsage(fs, "--delay and --message only go with reboot")
	}
	oneArg := func(what string) (string, error) {
		switch {
		case len(rest) == 0:
			return "", errUsage(fs, "%s needs %s", verb, what)
		case len(rest) > 1:
			return "", errUsage(fs, "%s takes one %s, got %d arguments", verb, what, len(rest))
		}
		return rest[0], nil
	}
	noArg := func() error {
		if len(rest) > 0 {
			return errUsage(fs, "%s takes no argument, got %q", verb, clean(rest[0]))
		}
		return nil
	}
	act := &desksidev1.RunAction{}
	var what string
	switch verb {
	case "kill":
		s, err := oneArg("a process ID")
		if err != nil {
			return err
		}
		pid, err := strconv.ParseInt(s, 10, 32)
		if err != nil || pid <= 1 {
			return errUsage(fs, "kill: %q is not a process ID (a number above 1)", clean(s))
		}
		act.Action = &desksidev1.RunAction_KillProcess{KillProcess: &desksidev1.KillProcess{Pid: int32(pid)}}
		what = fmt.Sprintf("kill process %d", pid)
	case "restart":
		name, err := oneArg("a service name")
		if err != nil {
			return err
		}
		if name == "" || len(name) > 128 || clean(name) != name || strings.ContainsAny(name, " /\\") {
			return errUsage(fs, "restart: %q is not a service name", clean(name))
		}
		act.Action = &desksidev1.RunAction_RestartService{RestartService: &desksidev1.RestartService{Name: name}}
		what = "restart service " + name
	case "flush-dns":
		if err := noArg(); err != nil {
			return err
		}
		act.Action = &desksidev1.RunAction_FlushDns{FlushDns: &desksidev1.FlushDns{}}
		what = "flush the DNS cache"
	case "reboot":
		if err := noArg(); err != nil {
			return err
		}
		if *delay < time.Minute || *delay > 24*time.Hour {
			return errUsage(fs, "--delay must be between 1m and 24h")
		}
		if n := utf8.RuneCountInString(*message); n > maxRebootMessage {
			return errUsage(fs, "--message is %d characters; the limit is %d", n, maxRebootMessage)
		}
		act.Action = &desksidev1.RunAction_Reboot{Reboot: &desksidev1.Reboot{Delay: durationpb.New(*delay), Message: *message}}
		what = "reboot"
	default:
		return errUsage(fs, "unknown action %q: use kill PID, restart SERVICE, flush-dns or reboot", clean(verb))
	}

	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(e.ctx, actionTimeout)
	defer cancel()
	ctx, err = e.sign(ctx, act, []string{id})
	if err != nil {
		return err
	}
	resp, err := c.client.RunAction(ctx, &desksidev1.RunActionRequest{DeviceId: id, Action: act})
	if err != nil {
		return c.explain(err)
	}
	res := resp.GetResult()
	msg := strings.TrimSpace(clean(res.GetMessage()))
	if !res.GetOk() {
		if msg == "" {
			msg = "the agent gave no reason"
		}
		return fmt.Errorf("%s: %s failed: %s", clean(id), what, msg)
	}
	if msg == "" {
		msg = "done"
	}
	_, err = fmt.Fprintf(e.stdout, "%s: %s\n", clean(id), msg)
	return err
}
