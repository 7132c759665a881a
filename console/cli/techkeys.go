package cli

// Technician keys on the relay (docs/adr 22): keygen registers the public
// key, an admin certifies what the relay lists and publishes the
// certificate, and the CLI picks its certificate up from the relay. The
// relay is not trusted with any of it: a certificate it hands back is
// checked against this machine's key, and agents check the rest.

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/internal/atomicfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

const registerHelp = `
Registers your technician key (deskside technician keygen made it) on the
relay you are signed in to, so an admin can certify it with
` + "`deskside technician certify YOUR-NAME --org-key FILE`" + ` without you
sending the key anywhere. keygen does this by itself when you are signed
in; use register after signing in later, or on another relay.`

const keysHelp = `
Lists technician keys the relay holds and their state: waiting for an
admin's certificate, certified (tier, groups, expiry), expired or revoked.
Without NAME your own keys; another technician's, or --all, for admins.

Examples:
  deskside technician keys
  deskside technician keys alice
  deskside technician keys --all`

const deleteKeyHelp = `
Removes a key from the relay by its fingerprint (deskside technician keys
shows them): your own, or another technician's with --technician (admin).
A certificate already handed out stays valid on agents until it expires:
revoke it with deskside technician revoke NAME --org-key FILE`

// orgUnary is unary for the OrgService.
func orgUnary[Resp any](e *runEnv, call func(context.Context, desksidev1.OrgServiceClient) (Resp, error)) (Resp, error) {
	return unaryOn(e, desksidev1.NewOrgServiceClient, call)
}

// signedIn reports whether there is a session to use, and who it is.
func (e *runEnv) signedIn() (string, bool) {
	cfg, _, err := e.loadConfig()
	if err != nil || cfg.Token == "" || cfg.Relay == "" || (!cfg.ExpiresAt.IsZero() && !e.now().Before(cfg.ExpiresAt)) {
		return "", false
	}
	return cfg.Technician, true
}

// keyLabel describes where this key lives, for the relay's list.
func keyLabel() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "cli"
	}
	return "cli on " + h
}

// register registers pub on the relay as the signed-in technician's key.
func (e *runEnv) register(pub ed25519.PublicKey, label string) (*desksidev1.TechnicianKey, error) {
	resp, err := orgUnary(e, func(ctx context.Context, oc desksidev1.OrgServiceClient) (*desksidev1.RegisterTechnicianKeyResponse, error) {
		return oc.RegisterTechnicianKey(ctx, &desksidev1.RegisterTechnicianKeyRequest{PublicKey: pub, Label: label})
	})
	if err != nil {
		return nil, err
	}
	return resp.GetKey(), nil
}

// printWaiting tells the technician whom to ask and what they run.
func (e *runEnv) printWaiting(name, fp string) {
	fmt.Fprintf(e.stdout, "Ask an admin to run: deskside technician certify %s --org-key ORG-KEY-FILE --role tier2\n", shellQuote(cmpOr(name, "YOUR-NAME")))
	fmt.Fprintf(e.stdout, "It prints your key's fingerprint: check with them that it is %s.\nThen see your state with: deskside technician status\n", fp)
}

func (e *runEnv) technicianRegister(args []string) error {
	fs := e.flags("technician register", registerHelp)
	label := fs.String("label", keyLabel(), "where the key lives, as admins see it")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	keyPath, _, err := e.techPaths()
	if err != nil {
		return err
	}
	key, err := readKey(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("no technician key on this machine; create one with deskside technician keygen (it registers it)")
	} else if err != nil {
		return err
	}
	k, err := e.register(key.Public().(ed25519.PublicKey), *label)
	if err != nil {
		return err
	}
	if k.GetCertificate() != nil {
		fmt.Fprintf(e.stdout, "Your key %s is registered and certified already.\n", k.GetFingerprint())
		return e.technicianStatus(nil)
	}
	fmt.Fprintf(e.stdout, "Registered your key %s on the relay as %s's key; it waits for an admin's certificate.\n", k.GetFingerprint(), clean(k.GetTechnician()))
	e.printWaiting(k.GetTechnician(), k.GetFingerprint())
	return nil
}

// relayCert returns the certificate the relay holds for pub, checked
// against pub (nil when there is none).
func (e *runEnv) relayCert(pub ed25519.PublicKey) (*desksidev1.TechnicianCertificate, *desksidev1.TechnicianCertificateBody, *desksidev1.TechnicianKey, error) {
	resp, err := orgUnary(e, func(ctx context.Context, oc desksidev1.OrgServiceClient) (*desksidev1.ListTechnicianKeysResponse, error) {
		return oc.ListTechnicianKeys(ctx, &desksidev1.ListTechnicianKeysRequest{})
	})
	if err != nil {
		return nil, nil, nil, err
	}
	for _, k := range resp.GetKeys() {
		if !pub.Equal(ed25519.PublicKey(k.GetPublicKey())) {
			continue
		}
		if k.GetCertificate() == nil {
			return nil, nil, k, nil
		}
		body, err := envelope.ParseCertificate(k.GetCertificate())
		if err != nil || !pub.Equal(ed25519.PublicKey(body.GetPublicKey())) {
			return nil, nil, k, fmt.Errorf("the relay's certificate for your key does not verify (%v); ask an admin to certify your key again", err)
		}
		return k.GetCertificate(), body, k, nil
	}
	return nil, nil, nil, nil
}

// installCert writes cert where signer reads it, 0600.
func installCert(path string, cert *desksidev1.TechnicianCertificate) error {
	raw, err := proto.Marshal(cert)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: certPEMType, Bytes: raw}), 0o600)
}

// fetchCert installs the relay's certificate for key when it holds one
// valid longer than have (nil: none installed); it returns the installed
// certificate, nil when there was nothing better.
func (e *runEnv) fetchCert(key ed25519.PrivateKey, have *desksidev1.TechnicianCertificateBody) (*desksidev1.TechnicianCertificate, *desksidev1.TechnicianCertificateBody, error) {
	if _, ok := e.signedIn(); !ok {
		return nil, nil, nil
	}
	_, certPath, err := e.techPaths()
	if err != nil {
		return nil, nil, err
	}
	cert, body, _, err := e.relayCert(key.Public().(ed25519.PublicKey))
	if err != nil || cert == nil {
		return nil, nil, err
	}
	if have != nil && !body.GetNotAfter().AsTime().After(have.GetNotAfter().AsTime()) {
		return nil, nil, nil
	}
	if err := installCert(certPath, cert); err != nil {
		return nil, nil, fmt.Errorf("install your certificate from the relay in %s: %w", certPath, err)
	}
	fmt.Fprintf(e.stderr, "note: installed your certificate from the relay: %s until %s\n", envelope.TierName(body.GetTier()), body.GetNotAfter().AsTime().UTC().Format(time.DateOnly))
	return cert, body, nil
}

// revocations returns the relay's revocation list checked against the
// organisation key org, nil when there is none or it does not verify.
func (e *runEnv) revocations(org []byte) *desksidev1.RevocationListBody {
	resp, err := orgUnary(e, func(ctx context.Context, oc desksidev1.OrgServiceClient) (*desksidev1.GetRevocationsResponse, error) {
		return oc.GetRevocations(ctx, &desksidev1.GetRevocationsRequest{})
	})
	if err != nil || resp.GetList() == nil {
		return nil
	}
	l, err := envelope.ParseRevocations(org, resp.GetList())
	if err != nil {
		return nil
	}
	return l
}

// certState is how a certificate stands now: "certified", "expired",
// "not yet valid" or "revoked".
func certState(b *desksidev1.TechnicianCertificateBody, revoked *desksidev1.RevocationListBody, now time.Time) string {
	switch {
	case envelope.Revoked(revoked, b):
		return "revoked"
	case !now.Before(b.GetNotAfter().AsTime()):
		return "expired"
	case b.GetNotBefore() != nil && now.Add(envelope.Skew).Before(b.GetNotBefore().AsTime()):
		return "not yet valid"
	}
	return "certified"
}

func groupsText(g []string) string {
	if len(g) == 0 {
		return "all devices"
	}
	return "groups " + clean(strings.Join(g, ", "))
}

// technicianStatus shows the first-run state and the next step: no key,
// a key waiting for an admin, certified, or expired/revoked.
func (e *runEnv) technicianStatus(args []string) error {
	fs := e.flags("technician status", "\nShows your technician key's state (none, waiting for an admin, certified, expired or revoked) and what to do next.")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	keyPath, certPath, err := e.techPaths()
	if err != nil {
		return err
	}
	name, online := e.signedIn()
	key, err := readKey(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		_, err = fmt.Fprintln(e.stdout, "Not signing: no technician key on this machine. Devices that pin an organisation key refuse your commands.\nCreate one: deskside technician keygen (signed in, it registers the key for an admin to certify)")
		return err
	} else if err != nil {
		return err
	}
	pub := key.Public().(ed25519.PublicKey)
	fp := envelope.Fingerprint(pub)
	cert, body, err := readCert(certPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if body != nil && !pub.Equal(ed25519.PublicKey(body.GetPublicKey())) {
		return fmt.Errorf("%s is for another key than %s; install the certificate of your key (deskside technician install-cert FILE), or remove it and run deskside technician status", certPath, keyPath)
	}
	if online {
		// The relay may hold a certificate this machine has not installed
		// yet, or a renewal.
		if c, b, ferr := e.fetchCert(key, body); ferr != nil {
			fmt.Fprintf(e.stderr, "warning: %v\n", ferr)
		} else if c != nil {
			cert, body = c, b
		}
	}
	if cert == nil {
		fmt.Fprintf(e.stdout, "Not signing yet: your key %s has no certificate.\n", fp)
		if !online {
			_, err = fmt.Fprintf(e.stdout, "Sign in (deskside login) and run deskside technician register, or give an admin your public key (%s) and install the certificate they make: deskside technician install-cert FILE\n",
				publicKeyText(pub))
			return err
		}
		_, _, k, err := e.relayCert(pub)
		if err != nil {
			return err
		}
		if k == nil {
			_, err = fmt.Fprintln(e.stdout, "The relay does not know it: register it with deskside technician register")
			return err
		}
		fmt.Fprintf(e.stdout, "It is registered on the relay (%s) and waits for an admin's certificate.\n", clean(k.GetLabel()))
		e.printWaiting(name, fp)
		return nil
	}
	var revoked *desksidev1.RevocationListBody
	if online {
		revoked = e.revocations(body.GetOrgPublicKey())
	}
	until := body.GetNotAfter().AsTime().UTC().Format(time.DateOnly)
	org := envelope.Fingerprint(body.GetOrgPublicKey())
	who := clean(body.GetTechnician())
	switch certState(body, revoked, e.now()) {
	case "revoked":
		_, err = fmt.Fprintf(e.stdout, "Revoked: the organisation revoked your certificate (revocation list %d); devices refuse your requests.\nTalk to an admin: with a new key (move %s away, then deskside technician keygen) they can certify you again unless they revoked %s by name.\n",
			revoked.GetSerial(), keyPath, who)
	case "expired":
		_, err = fmt.Fprintf(e.stdout, "Expired: your certificate ended on %s; devices refuse your requests.\nAsk an admin to certify your key again: deskside technician certify %s --org-key ORG-KEY-FILE --role %s --fingerprint %s\n",
			until, shellQuote(who), envelope.TierName(body.GetTier()), fp)
	case "not yet valid":
		_, err = fmt.Fprintf(e.stdout, "Not valid yet: your certificate starts on %s; check this machine's clock.\n", body.GetNotBefore().AsTime().UTC().Format(time.RFC3339))
	default:
		_, err = fmt.Fprintf(e.stdout, "Signing as %s (%s, %s) until %s; organisation key %s.\nKey %s; requests to devices are signed.\n",
			who, envelope.TierName(body.GetTier()), groupsText(body.GetGroups()), until, org, fp)
	}
	return err
}

// technicianKeys lists keys with their state.
func (e *runEnv) technicianKeys(args []string) error {
	fs := e.flags("technician keys", keysHelp)
	all := fs.Bool("all", false, "every technician's keys (admin)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 || (*all && len(pos) == 1) {
		return errUsage(fs, "give one technician NAME, or --all")
	}
	req := &desksidev1.ListTechnicianKeysRequest{All: *all}
	if len(pos) == 1 {
		req.Technician = pos[0]
	}
	resp, err := orgUnary(e, func(ctx context.Context, oc desksidev1.OrgServiceClient) (*desksidev1.ListTechnicianKeysResponse, error) {
		return oc.ListTechnicianKeys(ctx, req)
	})
	if err != nil {
		return err
	}
	if len(resp.GetKeys()) == 0 {
		if req.Technician == "" && !req.All {
			_, err = fmt.Fprintln(e.stdout, "You have no key on the relay: create one with deskside technician keygen (signed in, it registers it).")
		} else {
			_, err = fmt.Fprintln(e.stdout, "No technician keys; technicians create theirs with deskside technician keygen while signed in")
		}
		return err
	}
	var mine ed25519.PublicKey
	if keyPath, _, err := e.techPaths(); err == nil {
		if k, err := readKey(keyPath); err == nil {
			mine = k.Public().(ed25519.PublicKey)
		}
	}
	revs := map[string]*desksidev1.RevocationListBody{}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TECHNICIAN\tFINGERPRINT\tLABEL\tREGISTERED\tSTATE")
	waiting := 0
	for _, k := range resp.GetKeys() {
		state := "waiting for an admin's certificate"
		if k.GetCertificate() == nil {
			waiting++
		} else if b, err := envelope.ParseCertificate(k.GetCertificate()); err != nil || !ed25519.PublicKey(b.GetPublicKey()).Equal(ed25519.PublicKey(k.GetPublicKey())) {
			state = "certificate does not verify"
		} else {
			org := string(b.GetOrgPublicKey())
			if _, ok := revs[org]; !ok {
				revs[org] = e.revocations(b.GetOrgPublicKey())
			}
			switch st := certState(b, revs[org], e.now()); st {
			case "certified":
				state = fmt.Sprintf("certified %s, %s, until %s", envelope.TierName(b.GetTier()), groupsText(b.GetGroups()), b.GetNotAfter().AsTime().UTC().Format(time.DateOnly))
			case "expired":
				state = "expired " + b.GetNotAfter().AsTime().UTC().Format(time.DateOnly)
			default:
				state = st
			}
		}
		label := clean(k.GetLabel())
		if mine != nil && mine.Equal(ed25519.PublicKey(k.GetPublicKey())) {
			label += " (this machine)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", clean(k.GetTechnician()), clean(k.GetFingerprint()), label,
			k.GetRegisteredAt().AsTime().UTC().Format(time.DateOnly), state)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if waiting > 0 {
		_, err = fmt.Fprintln(e.stdout, "\nAn admin certifies a waiting key with: deskside technician certify NAME --org-key ORG-KEY-FILE --role tier2 [--fingerprint FP]")
	}
	return err
}

func (e *runEnv) technicianDeleteKey(args []string) error {
	fs := e.flags("technician delete-key", deleteKeyHelp)
	tech := fs.String("technician", "", "whose key (admin; default yours)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errUsage(fs, "give the key's FINGERPRINT (deskside technician keys shows it)")
	}
	if _, err := orgUnary(e, func(ctx context.Context, oc desksidev1.OrgServiceClient) (*desksidev1.DeleteTechnicianKeyResponse, error) {
		return oc.DeleteTechnicianKey(ctx, &desksidev1.DeleteTechnicianKeyRequest{Technician: *tech, Fingerprint: strings.TrimSpace(pos[0])})
	}); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Deleted key %s from the relay. A certificate it had stays valid on devices until it expires; revoke it with deskside technician revoke NAME --org-key FILE\n", clean(pos[0]))
	return err
}

// certifyRegistered certifies NAME's registered key (the one not
// certified yet, or the one with fingerprint) and publishes the
// certificate on the relay.
func (e *runEnv) certifyRegistered(name, fingerprint string, certify func(pub []byte) (*desksidev1.TechnicianCertificate, error)) (*desksidev1.TechnicianKey, error) {
	resp, err := orgUnary(e, func(ctx context.Context, oc desksidev1.OrgServiceClient) (*desksidev1.ListTechnicianKeysResponse, error) {
		return oc.ListTechnicianKeys(ctx, &desksidev1.ListTechnicianKeysRequest{Technician: name})
	})
	if err != nil {
		return nil, err
	}
	var pick []*desksidev1.TechnicianKey
	for _, k := range resp.GetKeys() {
		if len(k.GetPublicKey()) != ed25519.PublicKeySize || envelope.Fingerprint(k.GetPublicKey()) != k.GetFingerprint() {
			continue // not a key the relay could have stored; ignore it
		}
		if (fingerprint == "" && k.GetCertificate() == nil) || (fingerprint != "" && k.GetFingerprint() == fingerprint) {
			pick = append(pick, k)
		}
	}
	switch {
	case len(pick) == 0 && fingerprint != "":
		return nil, fmt.Errorf("%s has no key %s on the relay; see deskside technician keys %s", clean(name), clean(fingerprint), shellQuote(clean(name)))
	case len(pick) == 0:
		return nil, fmt.Errorf("%s has no key waiting for a certificate (see deskside technician keys %s): they create one with deskside technician keygen while signed in; or certify a key given to you with --key PUBKEY",
			clean(name), shellQuote(clean(name)))
	case len(pick) > 1:
		fmt.Fprintf(e.stdout, "%s has %d keys waiting for a certificate:\n", clean(name), len(pick))
		for _, k := range pick {
			fmt.Fprintf(e.stdout, "  %s  %s, registered %s\n", k.GetFingerprint(), clean(k.GetLabel()), k.GetRegisteredAt().AsTime().UTC().Format(time.DateOnly))
		}
		return nil, fmt.Errorf("pick the one %s told you with --fingerprint FP", clean(name))
	}
	k := pick[0]
	fmt.Fprintf(e.stdout, "Key of %s: %s (%s, registered %s)\nCheck with %s that this is the fingerprint their keygen printed.\n",
		clean(name), k.GetFingerprint(), clean(k.GetLabel()), k.GetRegisteredAt().AsTime().UTC().Format(time.DateOnly), clean(name))
	// The relay could list a key of its own under NAME: the fingerprint,
	// compared with the technician's, is what stops that. Asked for at a
	// terminal unless --fingerprint named the key already.
	if _, tty := isTerminal(e.stdin); tty && fingerprint == "" {
		fmt.Fprintf(e.stdout, "Certify this key? Type its first 6 characters (%s…) to confirm: ", k.GetFingerprint()[:6])
		line, _ := bufio.NewReader(io.LimitReader(e.stdin, 256)).ReadString('\n')
		if strings.TrimSpace(line) != k.GetFingerprint()[:6] {
			return nil, fmt.Errorf("not confirmed; nothing was signed (or name the key: --fingerprint %s)", k.GetFingerprint())
		}
	}
	cert, err := certify(k.GetPublicKey())
	if err != nil {
		return nil, err
	}
	pub, err := orgUnary(e, func(ctx context.Context, oc desksidev1.OrgServiceClient) (*desksidev1.PublishCertificateResponse, error) {
		return oc.PublishCertificate(ctx, &desksidev1.PublishCertificateRequest{Certificate: cert})
	})
	if err != nil {
		return nil, err
	}
	return pub.GetKey(), nil
}

// publicKeyText is how keygen prints a public key for offline use.
func publicKeyText(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}
