package cli

// Technician accounts (TechnicianService): an admin's add, list, set,
// disable, enable and delete, and everyone's own password change, which
// `deskside login` also leads through when an admin set the password.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/term"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// techUnary is unary for TechnicianService.
func techUnary[Resp any](e *runEnv, call func(context.Context, desksidev1.TechnicianServiceClient) (Resp, error)) (Resp, error) {
	return unaryOn(e, desksidev1.NewTechnicianServiceClient, call)
}

// parseRole reads tier1, tier2, tier3 or admin.
func parseRole(s string) (desksidev1.Role, error) {
	for _, r := range []desksidev1.Role{desksidev1.Role_ROLE_TIER1, desksidev1.Role_ROLE_TIER2, desksidev1.Role_ROLE_TIER3, desksidev1.Role_ROLE_ADMIN} {
		if roleName(r) == strings.ToLower(strings.TrimSpace(s)) {
			return r, nil
		}
	}
	return 0, fmt.Errorf("--role %q: use tier1, tier2, tier3 or admin", clean(s))
}

// splitGroups reads a comma-separated list.
func splitGroups(s string) []string {
	var out []string
	for _, g := range strings.Split(s, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

// readLine reads one line of at most maxPasswordBytes from r.
func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if len(line) > maxPasswordBytes {
		return "", fmt.Errorf("a line longer than %d bytes", maxPasswordBytes)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

const tiersText = `Tiers (the help-desk model):
  tier1  tickets, the fleet and inventory, diagnostics, view-only remote
         sessions with the user's consent
  tier2  tier1 plus desktop control, actions and commands on one device
  tier3  tier2 plus commands on many devices at once and unattended access
  admin  everything, plus technicians, policy and settings`

const addHelp = `
Adds a technician (admin). Without --password-stdin the relay generates a
password and this prints it once; either way the technician must change it
at their first sign-in (deskside login leads them through it). The change
is recorded in the audit log.

` + tiersText + `

Examples:
  deskside technician add alice --role tier1
  deskside technician add bob --role tier2 --groups lab,front-desk
  deskside technician add carol --role admin --password-stdin < pwfile`

func (e *runEnv) technicianAdd(args []string) error {
	fs := e.flags("technician add", addHelp)
	role := fs.String("role", "", "tier1, tier2, tier3 or admin (required)")
	groups := fs.String("groups", "", "comma-separated teams / device groups (default: all)")
	fromStdin := fs.Bool("password-stdin", false, "read the first password from the first line of standard input")
	quiet := fs.Bool("q", false, "print only the generated password")
	name, err := technicianName(fs, args)
	if err != nil {
		return err
	}
	if *role == "" {
		return errUsage(fs, "--role is required: tier1, tier2, tier3 or admin")
	}
	r, err := parseRole(*role)
	if err != nil {
		return errUsage(fs, "%v", err)
	}
	var pw string
	if *fromStdin {
		if pw, err = readLine(bufio.NewReader(e.stdin)); err != nil {
			return fmt.Errorf("read the password from standard input: %w", err)
		}
		if pw == "" {
			return errors.New("--password-stdin: standard input is empty; pipe the password in, or leave the flag out and the relay generates one")
		}
	}
	resp, err := techUnary(e, func(ctx context.Context, ts desksidev1.TechnicianServiceClient) (*desksidev1.CreateTechnicianResponse, error) {
		return ts.CreateTechnician(ctx, &desksidev1.CreateTechnicianRequest{Name: name, Role: r, Groups: splitGroups(*groups), Password: pw})
	})
	if err != nil {
		return err
	}
	gen := clean(resp.GetPassword())
	if *quiet && gen != "" {
		_, err := fmt.Fprintln(e.stdout, gen)
		return err
	}
	t := resp.GetTechnician()
	fmt.Fprintf(e.stdout, "Added %s (role %s, %s).\n", clean(t.GetName()), roleName(t.GetRole()), groupsLabel(t.GetGroups()))
	if gen != "" {
		fmt.Fprintf(e.stdout, "Password (shown once; hand it over by another channel than the name):\n\n  %s\n\n", gen)
	}
	_, err = fmt.Fprintf(e.stdout, "They sign in with `deskside login --user %s` and choose their own password then.\n", shellQuote(clean(t.GetName())))
	return err
}

func groupsLabel(g []string) string {
	if len(g) == 0 {
		return "all groups"
	}
	return "groups " + clean(strings.Join(g, ", "))
}

// accountState is a technician's state as list shows it.
func accountState(t *desksidev1.TechnicianAccount, now time.Time) string {
	var s []string
	switch {
	case t.GetDisabled():
		s = append(s, "disabled")
	case t.GetLockedUntil() != nil && now.Before(t.GetLockedUntil().AsTime()):
		s = append(s, "locked until "+fmtTime(t.GetLockedUntil().AsTime()))
	default:
		s = append(s, "active")
	}
	if t.GetMustChangePassword() {
		s = append(s, "must change password")
	}
	return strings.Join(s, ", ")
}

func (e *runEnv) technicianList(args []string) error {
	fs := e.flags("technician list", "Lists the relay's technicians (admin): role, groups, state (active, disabled,\nlocked, must change password) and whether two-factor sign-in is on.\n\n"+tiersText)
	asJSON := fs.Bool("json", false, "print a JSON array of technicians")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	resp, err := techUnary(e, func(ctx context.Context, ts desksidev1.TechnicianServiceClient) (*desksidev1.ListTechniciansResponse, error) {
		return ts.ListTechnicians(ctx, &desksidev1.ListTechniciansRequest{})
	})
	if err != nil {
		return err
	}
	out := e.output()
	if *asJSON {
		if err := writeJSONArray(out, resp.GetTechnicians()); err != nil {
			return err
		}
		return out.Flush()
	}
	var rows [][]string
	for _, t := range resp.GetTechnicians() {
		twoFA := "off"
		if t.GetTotpEnabled() {
			twoFA = "on"
		}
		g := "all"
		if len(t.GetGroups()) > 0 {
			g = strings.Join(t.GetGroups(), ",")
		}
		rows = append(rows, []string{t.GetName(), roleName(t.GetRole()), short(g, 40), accountState(t, e.now()), twoFA, fmtTime(t.GetCreatedAt().AsTime())})
	}
	if err := table(out, "", []string{"NAME", "ROLE", "GROUPS", "STATE", "2FA", "CREATED"}, rows); err != nil {
		return err
	}
	return out.Flush()
}

const setHelp = `
Changes a technician's role or groups (admin); the change applies to their
next request. Demoting the last admin is refused. Recorded in the audit
log.

` + tiersText + `

Examples:
  deskside technician set alice --role tier2
  deskside technician set alice --groups lab,front-desk
  deskside technician set alice --all-groups`

func (e *runEnv) technicianSet(args []string) error {
	fs := e.flags("technician set", setHelp)
	role := fs.String("role", "", "new role: tier1, tier2, tier3 or admin")
	groups := fs.String("groups", "", "replace the groups with this comma-separated list")
	all := fs.Bool("all-groups", false, "remove the group limit")
	name, err := technicianName(fs, args)
	if err != nil {
		return err
	}
	req := &desksidev1.UpdateTechnicianRequest{Name: name}
	if *role != "" {
		if req.Role, err = parseRole(*role); err != nil {
			return errUsage(fs, "%v", err)
		}
	}
	switch {
	case *all && *groups != "":
		return errUsage(fs, "--groups and --all-groups contradict each other; give one")
	case *all:
		req.SetGroups = true
	case *groups != "":
		req.SetGroups, req.Groups = true, splitGroups(*groups)
	}
	if req.Role == 0 && !req.SetGroups {
		return errUsage(fs, "nothing to change: give --role, --groups or --all-groups")
	}
	resp, err := techUnary(e, func(ctx context.Context, ts desksidev1.TechnicianServiceClient) (*desksidev1.UpdateTechnicianResponse, error) {
		return ts.UpdateTechnician(ctx, req)
	})
	if err != nil {
		return err
	}
	t := resp.GetTechnician()
	_, err = fmt.Fprintf(e.stdout, "%s is now %s, %s.\n", clean(t.GetName()), roleName(t.GetRole()), groupsLabel(t.GetGroups()))
	return err
}

func (e *runEnv) technicianDisable(args []string) error {
	return e.setDisabled(args, true)
}

func (e *runEnv) technicianEnable(args []string) error {
	return e.setDisabled(args, false)
}

func (e *runEnv) setDisabled(args []string, disabled bool) error {
	verb, help := "enable", "Lets a disabled technician sign in again (admin). Recorded in the audit log.\n\nExample:\n  deskside technician enable alice"
	if disabled {
		verb, help = "disable", "Disables a technician (admin): their sessions end at once and they cannot sign\nin until an admin enables them (deskside technician enable NAME). You cannot\ndisable yourself or the last admin. Recorded in the audit log.\n\nExample:\n  deskside technician disable alice"
	}
	fs := e.flags("technician "+verb, help)
	name, err := technicianName(fs, args)
	if err != nil {
		return err
	}
	resp, err := techUnary(e, func(ctx context.Context, ts desksidev1.TechnicianServiceClient) (*desksidev1.SetTechnicianDisabledResponse, error) {
		return ts.SetTechnicianDisabled(ctx, &desksidev1.SetTechnicianDisabledRequest{Name: name, Disabled: disabled})
	})
	if err != nil {
		return err
	}
	if disabled {
		_, err = fmt.Fprintf(e.stdout, "Disabled %s; %d of their sessions ended. `deskside technician enable %s` lets them back in.\n",
			clean(name), resp.GetSessionsEnded(), shellQuote(clean(name)))
	} else {
		_, err = fmt.Fprintf(e.stdout, "Enabled %s: they can sign in again.\n", clean(name))
	}
	return err
}

const deleteHelp = `
Deletes a technician (admin): their sessions end and the account is gone;
the audit log keeps their name on what they did. You cannot delete
yourself or the last admin. Keys they registered on the relay are removed;
a certificate the organisation gave them stays valid on agents until it
expires, unless you revoke it (deskside technician revoke NAME --org-key FILE).
To keep the account for later, disable it instead (deskside technician disable).

Example:
  deskside technician delete alice`

func (e *runEnv) technicianDelete(args []string) error {
	fs := e.flags("technician delete", deleteHelp)
	name, err := technicianName(fs, args)
	if err != nil {
		return err
	}
	resp, err := techUnary(e, func(ctx context.Context, ts desksidev1.TechnicianServiceClient) (*desksidev1.DeleteTechnicianResponse, error) {
		return ts.DeleteTechnician(ctx, &desksidev1.DeleteTechnicianRequest{Name: name})
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Deleted %s; %d of their sessions ended. If the organisation certified a key of theirs, revoke it on every agent: deskside technician revoke %s --org-key FILE\n",
		clean(name), resp.GetSessionsEnded(), shellQuote(clean(name)))
	return err
}

const passwordHelp = `
Changes your own password: the current one, then the new one twice (at a
terminal), or two lines on standard input with --password-stdin (current,
then new). The new password has at least 12 characters, is not your name
and not a common password. Your other sessions end; this one stays.
After an admin set your password, this is the first thing to do.

Examples:
  deskside password
  printf '%s\n%s\n' "$OLD" "$NEW" | deskside password --password-stdin`

func (e *runEnv) passwordCmd(args []string) error {
	fs := e.flags("password", passwordHelp)
	fromStdin := fs.Bool("password-stdin", false, "read the current and the new password from two lines of standard input")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	var cur, next string
	if *fromStdin {
		r := bufio.NewReader(e.stdin)
		var err error
		if cur, err = readLine(r); err == nil {
			next, err = readLine(r)
		}
		if err != nil {
			return fmt.Errorf("read the passwords from standard input: %w", err)
		}
		if cur == "" || next == "" {
			return errors.New("--password-stdin: give two lines, the current password and then the new one")
		}
	} else {
		f, ok := isTerminal(e.stdin)
		if !ok {
			return errors.New("not a terminal: give the current and the new password on two lines with --password-stdin")
		}
		var err error
		if cur, err = e.prompt(f, "Current password: "); err != nil {
			return err
		}
		if next, err = e.newPassword(f); err != nil {
			return err
		}
	}
	return e.changePassword(nil, cur, next)
}

// prompt reads a password from the terminal f without echo.
func (e *runEnv) prompt(f interface{ Fd() uintptr }, label string) (string, error) {
	fmt.Fprint(e.stderr, label)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	return string(b), nil
}

// newPassword asks for a new password twice on the terminal f.
func (e *runEnv) newPassword(f interface{ Fd() uintptr }) (string, error) {
	next, err := e.prompt(f, "New password (at least 12 characters): ")
	if err != nil {
		return "", err
	}
	again, err := e.prompt(f, "New password again: ")
	if err != nil {
		return "", err
	}
	if next != again {
		return "", errors.New("the two new passwords differ; run `deskside password` again")
	}
	return next, nil
}

// changePassword calls ChangePassword on c (nil: a new connection with
// the saved session).
func (e *runEnv) changePassword(c *conn, cur, next string) error {
	if c == nil {
		var err error
		if c, _, err = e.connect(); err != nil {
			return err
		}
		defer c.Close()
	}
	ctx, cancel := e.rpcContext()
	defer cancel()
	resp, err := desksidev1.NewTechnicianServiceClient(c.cc).ChangePassword(ctx, &desksidev1.ChangePasswordRequest{CurrentPassword: cur, NewPassword: next})
	if err != nil {
		return c.explain(err)
	}
	_, err = fmt.Fprintf(e.stdout, "Password changed; %d other sessions of yours ended.\n", resp.GetSessionsEnded())
	return err
}
