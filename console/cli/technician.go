package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const unlockHelp = `
Ends a technician's lockout (admin only). After 5 wrong sign-ins in a row
an account is locked for 15 minutes; this lets the technician sign in at
once and clears the count. The unlock is recorded in the audit log.

Example:
  deskside technician unlock alice`

const resetHelp = `
Sets a new password for a technician (admin only): a random one the relay
generates and prints once, or the first line of standard input with
--password-stdin (at least 12 characters, not their name, not a common
one). They must change it at their next sign-in (deskside login leads them
through it). The account is unlocked and the technician's sessions end;
their authenticator (TOTP) stays as it is. Hand
the password over by a channel other than the one you would use for the
name. The reset is recorded in the audit log (without the password).

Examples:
  deskside technician reset-password alice
  deskside technician reset-password alice --password-stdin < pwfile`

// technicianName parses the NAME argument of a technician command.
func technicianName(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return "", err
	}
	switch {
	case len(pos) == 0:
		return "", errUsage(fs, "a technician NAME is required")
	case len(pos) > 1:
		return "", errUsage(fs, "one technician NAME expected, got %d arguments", len(pos))
	}
	return pos[0], nil
}

func (e *runEnv) technicianUnlock(args []string) error {
	fs := e.flags("technician unlock", unlockHelp)
	name, err := technicianName(fs, args)
	if err != nil {
		return err
	}
	resp, err := unary(e, func(ctx context.Context, cs desksidev1.ConsoleServiceClient) (*desksidev1.UnlockTechnicianResponse, error) {
		return cs.UnlockTechnician(ctx, &desksidev1.UnlockTechnicianRequest{Name: name})
	})
	if err != nil {
		return err
	}
	if resp.GetWasLocked() {
		_, err = fmt.Fprintf(e.stdout, "Unlocked %s: they can sign in now.\n", clean(name))
	} else {
		_, err = fmt.Fprintf(e.stdout, "%s was not locked; %d wrong sign-ins cleared.\n", clean(name), resp.GetFailures())
	}
	return err
}

func (e *runEnv) technicianResetPassword(args []string) error {
	fs := e.flags("technician reset-password", resetHelp)
	fromStdin := fs.Bool("password-stdin", false, "read the new password from the first line of standard input")
	quiet := fs.Bool("q", false, "print only the generated password")
	name, err := technicianName(fs, args)
	if err != nil {
		return err
	}
	var pw string
	if *fromStdin {
		line, err := bufio.NewReader(io.LimitReader(e.stdin, maxPasswordBytes)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the password from standard input: %w", err)
		}
		if pw = strings.TrimRight(line, "\r\n"); pw == "" {
			return errors.New("--password-stdin: standard input is empty; pipe the new password in, or leave the flag out and the relay generates one")
		}
	}
	resp, err := unary(e, func(ctx context.Context, cs desksidev1.ConsoleServiceClient) (*desksidev1.ResetTechnicianPasswordResponse, error) {
		return cs.ResetTechnicianPassword(ctx, &desksidev1.ResetTechnicianPasswordRequest{Name: name, NewPassword: pw})
	})
	if err != nil {
		return err
	}
	gen := clean(resp.GetPassword())
	if *quiet && gen != "" {
		_, err := fmt.Fprintln(e.stdout, gen)
		return err
	}
	if gen != "" {
		fmt.Fprintf(e.stdout, "New password for %s (shown once):\n\n  %s\n\n", clean(name), gen)
	} else {
		fmt.Fprintf(e.stdout, "Set the password of %s.\n", clean(name))
	}
	_, err = fmt.Fprintf(e.stdout, "The account is unlocked; %d of their sessions ended. They sign in with `deskside login --user %s` and choose a new password then.\n",
		resp.GetSessionsEnded(), shellQuote(clean(name)))
	return err
}
