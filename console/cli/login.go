package cli

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const loginHelp = `
Signs in to a relay and stores the session in the session file
($DESKSIDE_CONFIG, default <user config dir>/deskside/cli.json, mode 0600).

The relay's certificate is verified:
  --ca FILE     FILE (the relay's <data-dir>/ca.pem) is the only trusted root
  --ca-pin PIN  the relay's chain must contain the CA with this pin (the last
                part of an enrollment token), like agent enrollment
  neither       the system's roots; a relay with its own CA then fails with a
                hint. Signing in again to the same relay reuses the CA saved
                at the previous login.

The password comes from --password-stdin (the first line of standard input),
else $DESKSIDE_PASSWORD, else a prompt when standard input is a terminal.

An account with a second factor also needs --totp CODE, the current code of
its authenticator app. After one sign-in with a code, the CLI remembers that
the account has one and asks for the code when standard input is a
terminal. A refused sign-in never says whether the password was right or a
code was missing: the answer is the same.

Example:
  deskside login --relay relay.example.com:7443 --ca ca.pem --user alice`

func termIsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

func (e *runEnv) login(args []string) error {
	fs := e.flags("login", loginHelp)
	relay := fs.String("relay", "", "relay `HOST:PORT` (default: the relay of the previous login; port 7443 if omitted)")
	caFile := fs.String("ca", "", "PEM `FILE` of the relay's CA (<data-dir>/ca.pem on the relay); the only trusted root")
	caPin := fs.String("ca-pin", "", "`PIN` (base64url SHA-256) of the relay's CA certificate")
	user := fs.String("user", "", "technician `NAME` (default $DESKSIDE_USER, else admin)")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	totp := fs.String("totp", "", "current TOTP `CODE`, for accounts with a second factor")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *caFile != "" && *caPin != "" {
		return errUsage(fs, "pass either --ca or --ca-pin, not both")
	}

	path, err := e.configPath()
	if err != nil {
		return err
	}
	prev, _, err := e.loadConfig()
	if errors.Is(err, ErrNotSignedIn) {
		prev, err = &config{}, nil
	}
	if err != nil {
		return err
	}

	addr := *relay
	if addr == "" {
		addr = prev.Relay
	}
	if addr == "" {
		return errUsage(fs, "--relay HOST:PORT is required")
	}
	if addr, err = normalizeRelay(addr); err != nil {
		return err
	}
	var t trust
	switch {
	case *caFile != "":
		if t.caPEM, err = readCA(*caFile); err != nil {
			return err
		}
		t.caFile = *caFile
	case *caPin != "":
		if t.pin, err = checkPin(*caPin); err != nil {
			return err
		}
	case addr == prev.Relay && prev.CAPEM != "":
		t.caPEM = []byte(prev.CAPEM)
	}
	name := cmp.Or(*user, e.getenv("DESKSIDE_USER"), "admin")
	pw, err := e.password(*pwStdin, name, addr)
	if err != nil {
		return err
	}

	c, err := dial(addr, t, "", e.version)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	code := strings.TrimSpace(*totp)
	if prev.Relay != addr {
		prev.TOTPUsers = nil
	}
	if code == "" && slices.Contains(prev.TOTPUsers, name) {
		if code, err = e.totpCode(name); err != nil {
			return err
		}
	}
	resp, err := c.client.Login(ctx, &desksidev1.LoginRequest{Name: name, Password: pw, TotpCode: code})
	if err != nil {
		if herr := c.httpAnswer(err); herr != nil {
			return herr
		}
		if s, ok := status.FromError(err); ok && (s.Code() == codes.Unauthenticated || s.Code() == codes.PermissionDenied) {
			return fmt.Errorf("login to %s failed: %s", addr, clean(s.Message()))
		}
		return c.explain(err)
	}

	caPEM := string(t.caPEM)
	if t.pin != "" {
		if caPEM = string(c.pinnedPEM()); caPEM == "" {
			return errors.New("internal error: signed in but the pinned CA was not recorded")
		}
	}
	tech := resp.GetTechnician()
	cfg := &config{
		Relay: addr, CAPEM: caPEM, Token: resp.GetToken(),
		Technician: tech.GetName(), Role: roleName(tech.GetRole()),
		ExpiresAt: resp.GetExpiresAt().AsTime(),
		TOTPUsers: slices.DeleteFunc(slices.Clone(prev.TOTPUsers), func(u string) bool { return u == tech.GetName() }),
	}
	if tech.GetTotpEnabled() {
		cfg.TOTPUsers = append(cfg.TOTPUsers, tech.GetName())
	}
	if err := saveConfig(path, cfg); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(e.stdout, "Signed in to %s as %s (role %s). The session expires %s (%s).\n",
		addr, clean(cfg.Technician), cfg.Role, until(e.now(), cfg.ExpiresAt), fmtTime(cfg.ExpiresAt)); err != nil {
		return err
	}
	if !tech.GetMustChangePassword() {
		return nil
	}
	// An admin set the password: nothing else works until it is changed.
	f, ok := isTerminal(e.stdin)
	if !ok || *pwStdin {
		return errors.New("your password was set by an admin and must be changed before anything else: run `deskside password`")
	}
	fmt.Fprintln(e.stderr, "Your password was set by an admin; choose your own now.")
	next, err := e.newPassword(f)
	if err != nil {
		return err
	}
	authed, err := dial(addr, trust{caPEM: []byte(cfg.CAPEM)}, cfg.Token, e.version)
	if err != nil {
		return err
	}
	defer authed.Close()
	return e.changePassword(authed, pw, next)
}

// totpCode asks for the authenticator code of name on a terminal; off a
// terminal it is empty (the relay then refuses, naming --totp).
func (e *runEnv) totpCode(name string) (string, error) {
	f, ok := isTerminal(e.stdin)
	if !ok {
		return "", nil
	}
	fmt.Fprintf(e.stderr, "Authenticator code for %s: ", clean(name))
	line, err := bufio.NewReader(io.LimitReader(f, 64)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the authenticator code: %w", err)
	}
	return strings.TrimSpace(line), nil
}

// maxPasswordBytes bounds a password read from standard input.
const maxPasswordBytes = 4096

// password finds the login password: --password-stdin, DESKSIDE_PASSWORD,
// or a no-echo prompt on a terminal.
func (e *runEnv) password(fromStdin bool, name, relay string) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(e.stdin, maxPasswordBytes)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("--password-stdin: standard input is empty; pipe the password in, e.g. `deskside login ... --password-stdin < pwfile`")
		}
		return pw, nil
	}
	if pw := e.getenv("DESKSIDE_PASSWORD"); pw != "" {
		return pw, nil
	}
	f, ok := isTerminal(e.stdin)
	if !ok {
		return "", ErrNoPassword
	}
	fmt.Fprintf(e.stderr, "Password for %s at %s: ", clean(name), relay)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if len(b) == 0 {
		return "", errors.New("empty password")
	}
	return string(b), nil
}

func (e *runEnv) logout(args []string) error {
	fs := e.flags("logout", "Ends the session on the relay and removes its token from the session file.\n"+
		"The relay address and CA are kept, so `deskside login` needs no flags next time.")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	cfg, path, err := e.loadConfig()
	if err != nil {
		return err
	}
	if cfg.Token == "" {
		_, err := fmt.Fprintln(e.stdout, "Not signed in.")
		return err
	}
	var remote error
	if c, err := dial(cfg.Relay, trust{caPEM: []byte(cfg.CAPEM)}, cfg.Token, e.version); err != nil {
		remote = err
	} else {
		ctx, cancel := e.rpcContext()
		_, err := c.client.Logout(ctx, &desksidev1.LogoutRequest{})
		cancel()
		c.Close()
		// An unknown or expired session has ended already.
		if status.Code(err) != codes.Unauthenticated {
			remote = c.explain(err)
		}
	}
	expires := cfg.ExpiresAt
	cfg.Token, cfg.Technician, cfg.Role, cfg.ExpiresAt = "", "", "", time.Time{}
	if err := saveConfig(path, cfg); err != nil {
		return err
	}
	if remote != nil {
		return fmt.Errorf("signed out here, but the relay could not end the session, which stays valid until %s: %w",
			fmtTime(expires), remote)
	}
	_, err = fmt.Fprintf(e.stdout, "Signed out of %s.\n", cfg.Relay)
	return err
}

func (e *runEnv) whoami(args []string) error {
	fs := e.flags("whoami", "Shows the signed-in technician, their role, the relay and when the session expires.")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	c, cfg, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := e.rpcContext()
	defer cancel()
	resp, err := c.client.WhoAmI(ctx, &desksidev1.WhoAmIRequest{})
	if err != nil {
		return c.explain(err)
	}
	exp := resp.GetSessionExpiresAt().AsTime()
	_, err = fmt.Fprintf(e.stdout, "%s (role %s) on relay %s; the session expires %s (%s).\n",
		clean(resp.GetTechnician().GetName()), roleName(resp.GetTechnician().GetRole()), cfg.Relay,
		until(e.now(), exp), fmtTime(exp))
	return err
}
