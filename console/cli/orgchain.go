package cli

// The organisation key chain on the admin's side (docs/adr 22): publish
// the key on the relay, so agents pin it (new ones through the enrollment
// token, existing unpinned ones once from the relay), hand it over to a new
// key, and show what the relay holds, checked here.

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

const orgPublishHelp = `
Publishes the organisation key on the relay: signs a statement with the key
itself (the key stays here) and stores it on the relay, which sends it to
every agent. Agents that pin no key yet, and had none from their
enrollment token, pin it once; agents that pin a key keep it. From then on
new enrollment tokens carry its fingerprint, so new agents pin it at
enrollment. Publishing the same key again changes nothing.

Example:
  deskside org publish --org-key org-key.pem`

const orgRotateHelp = `
Hands the organisation key over to a new one: creates the new key in
NEWFILE (0600; an existing NEWFILE is used as is), signs the hand-over with
the current key and publishes it. Agents pinning the current key move to
the new one when their relay sends it (at once for connected agents).
Keep the old key file until every agent moved; then certify technicians
again with the new key (certificates of the old key are refused by agents
that moved).

Example:
  deskside org rotate --org-key org-key.pem --new-key org-key-2.pem`

const orgShowHelp = `
Shows the organisation key chain the relay holds, oldest first, each
statement's signature checked here (the relay is not trusted with it).`

func (e *runEnv) orgPublish(args []string) error {
	fs := e.flags("org publish", orgPublishHelp)
	orgKey := fs.String("org-key", "", "organisation key file from deskside org init (required)")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *orgKey == "" {
		return errUsage(fs, "--org-key FILE is required")
	}
	key, err := readKey(*orgKey)
	if err != nil {
		return err
	}
	st, err := envelope.SignOrgKey(key, nil, time.Now())
	if err != nil {
		return err
	}
	fp, err := e.publishOrgKey(st)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Published organisation key %s on the relay.\n"+
		"Agents that pin no key pin it once (they obeyed the relay until now); agents that pin a key keep theirs.\n"+
		"New enrollment tokens carry it (deskside token create), so new agents pin it when they enroll.\n"+
		"Check an agent out of band: its log names the key it pinned, or pin it as root: deskside-agent org pin %s\n", fp, fp)
	return err
}

func (e *runEnv) orgRotate(args []string) error {
	fs := e.flags("org rotate", orgRotateHelp)
	orgKey := fs.String("org-key", "", "the current organisation key file (required)")
	newKey := fs.String("new-key", "", "file for the new organisation key (required; created 0600)")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *orgKey == "" || *newKey == "" {
		return errUsage(fs, "--org-key FILE and --new-key NEWFILE are required")
	}
	old, err := readKey(*orgKey)
	if err != nil {
		return err
	}
	next, err := readKey(*newKey)
	switch {
	case errors.Is(err, os.ErrNotExist):
		_, next, _ = ed25519.GenerateKey(rand.Reader)
		if err := writeKey(*newKey, next); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "New organisation key written to %s (keep it offline).\n", *newKey)
	case err != nil:
		return err
	default:
		fmt.Fprintf(e.stdout, "Using the key already in %s.\n", *newKey)
	}
	nextPub := next.Public().(ed25519.PublicKey)
	if nextPub.Equal(old.Public()) {
		return errUsage(fs, "--new-key is the same key as --org-key")
	}
	st, err := envelope.SignOrgKey(old, nextPub, time.Now())
	if err != nil {
		return err
	}
	fp, err := e.publishOrgKey(st)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Handed the organisation key over from %s to %s.\n"+
		"Agents pinning the old key move to the new one when the relay sends it (connected agents now).\n"+
		"Keep %s until every agent moved. Certify technicians again with the new key:\n"+
		"  deskside technician certify NAME --key PUBKEY --role tier2 --org-key %s\n",
		envelope.Fingerprint(old.Public().(ed25519.PublicKey)), fp, *orgKey, *newKey)
	return err
}

// publishOrgKey publishes st and returns the fingerprint the relay now
// holds, which must be the statement's.
func (e *runEnv) publishOrgKey(st *desksidev1.OrgKeyStatement) (string, error) {
	b := &desksidev1.OrgKeyStatementBody{}
	if err := proto.Unmarshal(st.GetBody(), b); err != nil {
		return "", err
	}
	want := envelope.Fingerprint(b.GetNewPublicKey())
	c, _, err := e.connect()
	if err != nil {
		return "", err
	}
	defer c.Close()
	ctx, cancel := e.rpcContext()
	defer cancel()
	resp, err := desksidev1.NewOrgServiceClient(c.cc).PublishOrgKey(ctx, &desksidev1.PublishOrgKeyRequest{Statement: st})
	if err != nil {
		return "", c.explain(err)
	}
	if got := resp.GetFingerprint(); got != want {
		return "", fmt.Errorf("the relay says its organisation key is %q, not %s: check it with deskside org show", clean(got), want)
	}
	return want, nil
}

func (e *runEnv) orgShow(args []string) error {
	fs := e.flags("org show", orgShowHelp)
	if err := noArgs(fs, args); err != nil {
		return err
	}
	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := e.rpcContext()
	defer cancel()
	resp, err := desksidev1.NewOrgServiceClient(c.cc).GetOrgKey(ctx, &desksidev1.GetOrgKeyRequest{})
	if err != nil {
		return c.explain(err)
	}
	chain := resp.GetStatements()
	if len(chain) == 0 {
		_, err := fmt.Fprintln(e.stdout, "The relay holds no organisation key. Publish yours: deskside org publish --org-key FILE (deskside org init creates one).")
		return err
	}
	// Walk the chain as an agent does, from its first, self-signed key.
	cur, ok := "", true
	for i, s := range chain {
		b := &desksidev1.OrgKeyStatementBody{}
		if err := proto.Unmarshal(s.GetBody(), b); err != nil {
			fmt.Fprintf(e.stdout, "%2d. malformed statement\n", i+1)
			ok = false
			continue
		}
		newFP := envelope.Fingerprint(b.GetNewPublicKey())
		when := fmtTime(b.GetIssuedAt().AsTime())
		signer, what := newFP, fmt.Sprintf("published  %s", newFP)
		if len(b.GetOldPublicKey()) > 0 {
			signer = envelope.Fingerprint(b.GetOldPublicKey())
			what = fmt.Sprintf("hand-over  %s -> %s", signer, newFP)
		}
		note := ""
		if _, err := envelope.VerifyOrgKey(signer, s); err != nil {
			note, ok = "  BAD SIGNATURE", false
		} else if (i == 0) != (len(b.GetOldPublicKey()) == 0) || (i > 0 && signer != cur) {
			note, ok = "  NOT IN CHAIN", false
		}
		cur = newFP
		fmt.Fprintf(e.stdout, "%2d. %s  (%s)%s\n", i+1, what, when, note)
	}
	if !ok || cur != resp.GetFingerprint() {
		_, err := fmt.Fprintf(e.stdout, "\nThe chain does not verify: agents ignore what does not follow from the key they pin. Publish it again from the key files (deskside org publish / rotate).\n")
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "\nCurrent organisation key: %s\nCompare it with the fingerprint deskside org init (or org rotate) printed; agents pin it at enrollment (it is the token's fourth part).\n", cur)
	return err
}
