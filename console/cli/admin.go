package cli

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

const tokenHelp = `
Creates an enrollment token (admin only) and prints the command that
enrolls a device with it:

  deskside-agent enroll --relay HOST:PORT --token TOKEN

The token also carries the relay CA's pin, so the agent verifies the relay
without any other setup, and, once an organisation key is published
(deskside org publish), that key's fingerprint as its fourth part
(ID.SECRET.CAPIN.ORGFP): the agent pins it when it enrolls. Compare it
with the fingerprint deskside org init printed. It is shown once.

Examples:
  deskside token create
  deskside token create --ttl 24h --uses 50
  TOKEN=$(deskside token create -q)`

func (e *runEnv) tokenCreate(args []string) error {
	fs := e.flags("token create", tokenHelp)
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid (at most 720h)")
	uses := fs.Uint("uses", 1, "how many devices may enroll with it")
	quiet := fs.Bool("q", false, "print only the token")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *ttl <= 0 || *ttl > 30*24*time.Hour {
		return errUsage(fs, "--ttl must be between 1s and 720h")
	}
	if *uses == 0 || *uses > 100000 {
		return errUsage(fs, "--uses must be between 1 and 100000")
	}
	c, cfg, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := e.rpcContext()
	defer cancel()
	resp, err := c.client.CreateEnrollmentToken(ctx, &desksidev1.CreateEnrollmentTokenRequest{
		Ttl: durationpb.New(*ttl), Uses: uint32(*uses),
	})
	if err != nil {
		return c.explain(err)
	}
	tok := clean(resp.GetToken())
	if *quiet {
		_, err := fmt.Fprintln(e.stdout, tok)
		return err
	}
	exp := resp.GetExpiresAt().AsTime()
	plural := "s"
	if resp.GetUses() == 1 {
		plural = ""
	}
	_, err = fmt.Fprintf(e.stdout, "Enrollment token (valid %d use%s, expires %s, %s):\n\n  %s\n\n"+
		"On the device, as root or Administrator, run:\n\n  deskside-agent enroll --relay %s --token %s\n",
		resp.GetUses(), plural, until(e.now(), exp), fmtTime(exp), tok, shellQuote(clean(cfg.Relay)), shellQuote(tok))
	if err != nil {
		return err
	}
	if parsed, perr := wire.ParseToken(tok); perr == nil && parsed.OrgFingerprint != "" {
		_, err = fmt.Fprintf(e.stdout, "\nThe token's last part is the organisation key's fingerprint, which the agent pins when it enrolls:\n\n  %s\n\n"+
			"Compare it with the fingerprint deskside org init printed: if it differs, do not use the token (deskside org show).\n", parsed.OrgFingerprint)
	} else {
		_, err = fmt.Fprintf(e.stdout, "\nThe relay holds no organisation key, so the token carries none: the agent obeys relay-authorised requests\n"+
			"until it pins one (publish yours with deskside org publish --org-key FILE).\n")
	}
	return err
}
