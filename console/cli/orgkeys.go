package cli

// Signed envelopes (docs/adr 21) on the technician's side: the
// organisation key (an admin's machine, never the relay), technician
// keys and certificates, and the envelope the CLI seals for each run,
// action and session once the technician's key is certified.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/internal/atomicfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

const certPEMType = "DESKSIDE TECHNICIAN CERTIFICATE"

const orgInitHelp = `
Creates the organisation signing key (Ed25519) on this machine, in FILE
(default org-key.pem in the current directory), readable by you only. It
never goes to the relay: keep it offline. Publish it next
(` + "`deskside org publish --org-key FILE`" + `): new enrollment tokens then carry its
fingerprint and agents pin it at enrollment; agents that pin nothing pin it
once from the relay. An agent can also pin it by hand, as root:
` + "`deskside-agent org pin FINGERPRINT`" + `. A pinning agent runs commands,
actions and desktop sessions only with envelopes of technicians this key
certified.`

const keygenHelp = `
Creates your technician key next to the CLI's session file (0600), prints
its fingerprint and, when you are signed in, registers the public key on
the relay. Then ask an admin to run ` + "`deskside technician certify YOUR-NAME`" + `
and compare the fingerprint it prints with yours. Your CLI picks up the
certificate from the relay by itself (` + "`deskside technician status`" + ` shows
it); from then on run and action are signed.

Offline: give an admin the public key it prints, and install the file
they make with ` + "`deskside technician install-cert FILE`" + `.`

const certifyHelp = `
Certifies a technician's public key with the organisation key (admin):
binds the technician name, tier (tier1: view-only desktop; tier2:
commands, actions, desktop control on one device; tier3: commands on many
devices too; admin), optional device groups and an
expiry. Without --key it takes the key NAME registered on the relay (the
one waiting for a certificate, or --fingerprint FP), prints its
fingerprint for you to compare with the technician's (at a terminal you
confirm it by typing its first characters), and publishes the
certificate on the relay, where their CLI picks it up. With --key (offline)
it writes NAME.cert.pem for the technician to install.

Examples:
  deskside technician certify alice --org-key org-key.pem --role tier2 --days 90
  deskside technician certify alice --org-key org-key.pem --role tier2 --fingerprint FP
  deskside technician certify alice --key PUBKEY --role tier2 --expires 90d --org-key org-key.pem`

const revokeHelp = `
Revokes a technician with the organisation key: signs a revocation list
(the relay's current list plus NAME, with the next serial) and publishes it
on the relay, which hands it to every agent with each privileged request.`

func writeKey(path string, key ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists; move it away first, or use it", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func readKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others; chmod 600 %s", path, path)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: not a PEM key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return ek, nil
}

func (e *runEnv) techPaths() (key, cert string, err error) {
	p, err := e.configPath()
	if err != nil {
		return "", "", err
	}
	d := filepath.Dir(p)
	return filepath.Join(d, "technician-key.pem"), filepath.Join(d, "technician-cert.pem"), nil
}

// newKeyFile parses `[FILE]` (default def), creates an Ed25519 key in
// that file (0600) and returns the path and the key's fingerprint.
func (e *runEnv) newKeyFile(name, help, def string, args []string) (path, fp string, err error) {
	fs := e.flags(name, help)
	pos, err := parse(fs, args)
	if err != nil {
		return "", "", err
	}
	path = def
	if len(pos) > 0 {
		path = pos[0]
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	if err := writeKey(path, key); err != nil {
		return "", "", err
	}
	return path, envelope.Fingerprint(pub), nil
}

func (e *runEnv) orgInit(args []string) error {
	path, fp, err := e.newKeyFile("org init", orgInitHelp, "org-key.pem", args)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Organisation key written to %s (keep it offline; the relay never holds it).\nFingerprint: %s (note it: agents and tokens are checked against it)\n"+
		"Next, publish it so agents pin it: deskside org publish --org-key %s\n"+
		"(or pin it on an agent by hand, as root: deskside-agent org pin %s)\n"+
		"Then certify each technician's registered key (they create it with deskside technician keygen, or on the web console's profile page):\n"+
		"  deskside technician certify NAME --role tier2 --org-key %s\n", path, fp, path, fp, path)
	return err
}

func (e *runEnv) technicianKeygen(args []string) error {
	fs := e.flags("technician keygen", keygenHelp)
	label := fs.String("label", keyLabel(), "where the key lives, as admins see it on the relay")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	keyPath, _, err := e.techPaths()
	if err != nil {
		return err
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	fp := envelope.Fingerprint(pub)
	fmt.Fprintf(e.stdout, "Technician key written to %s.\nFingerprint: %s\nPublic key: %s\n", keyPath, fp, publicKeyText(pub))
	name, online := e.signedIn()
	if !online {
		_, err = fmt.Fprintf(e.stdout, "Not signed in, so not registered on a relay: sign in (deskside login) and run deskside technician register,\nor give an admin the public key: deskside technician certify YOUR-NAME --key %s --role tier2 --org-key ORG-KEY-FILE\nthen install the certificate they make: deskside technician install-cert FILE\n",
			publicKeyText(pub))
		return err
	}
	k, err := e.register(pub, *label)
	if err != nil {
		fmt.Fprintf(e.stderr, "warning: the key is not registered on the relay: %v\nRegister it once the relay answers: deskside technician register\n", err)
		return nil
	}
	fmt.Fprintf(e.stdout, "Registered on the relay as %s's key; it waits for an admin's certificate.\n", clean(cmpOr(k.GetTechnician(), name)))
	e.printWaiting(cmpOr(k.GetTechnician(), name), fp)
	return nil
}

func parseExpiry(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("--expires %q: use days like 90d, or a duration like 720h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires %q: use days like 90d, or a duration like 720h", s)
	}
	return d, nil
}

func (e *runEnv) technicianCertify(args []string) error {
	fs := e.flags("technician certify", certifyHelp)
	role := fs.String("role", "tier2", "tier1, tier2, tier3 or admin")
	groups := fs.String("groups", "", "comma-separated device groups the certificate is limited to")
	expires := fs.String("expires", "90d", "validity (90d, 720h)")
	days := fs.Int("days", 0, "validity in days (instead of --expires)")
	orgKey := fs.String("org-key", "", "organisation key file from deskside org init (required)")
	pubKey := fs.String("key", "", "the technician's public key, as deskside technician keygen printed it (offline; default: their key registered on the relay)")
	fingerprint := fs.String("fingerprint", "", "which of the technician's registered keys to certify, when they have several")
	out := fs.String("o", "", "certificate file to write (default with --key: NAME.cert.pem)")
	name, err := technicianName(fs, args)
	if err != nil {
		return err
	}
	tier, err := envelope.ParseTier(*role)
	if err != nil {
		return errUsage(fs, "%v", err)
	}
	d, err := parseExpiry(*expires)
	if err != nil {
		return errUsage(fs, "%v", err)
	}
	if *days < 0 {
		return errUsage(fs, "--days must be positive")
	} else if *days > 0 {
		d = time.Duration(*days) * 24 * time.Hour
	}
	if *orgKey == "" {
		return errUsage(fs, "--org-key FILE is required (deskside org init made it)")
	}
	if *pubKey != "" && *fingerprint != "" {
		return errUsage(fs, "--key and --fingerprint name the key two ways; give one")
	}
	org, err := readKey(*orgKey)
	if err != nil {
		return err
	}
	now := time.Now()
	certify := func(pub []byte) (*desksidev1.TechnicianCertificate, error) {
		b := &desksidev1.TechnicianCertificateBody{Technician: name, PublicKey: pub, Tier: tier,
			NotBefore: timestamppb.New(now), NotAfter: timestamppb.New(now.Add(d))}
		if *groups != "" {
			b.Groups = strings.Split(*groups, ",")
		}
		return envelope.Certify(org, b)
	}
	until := now.Add(d).UTC().Format(time.DateOnly)
	if *pubKey == "" {
		// Online: the key the technician registered on the relay.
		k, err := e.certifyRegistered(name, strings.TrimSpace(*fingerprint), certify)
		if err != nil {
			return err
		}
		if *out != "" {
			if err := writeCertFile(*out, k.GetCertificate()); err != nil {
				return err
			}
		}
		_, err = fmt.Fprintf(e.stdout, "Certified %s's key %s as %s until %s, and published the certificate on the relay.\n%s's CLI picks it up by itself (deskside technician status shows it).\n",
			clean(name), k.GetFingerprint(), *role, until, clean(name))
		return err
	}
	pub, err := base64.StdEncoding.DecodeString(strings.TrimSpace(*pubKey))
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return errUsage(fs, "--key is not a technician public key (deskside technician keygen prints one)")
	}
	cert, err := certify(pub)
	if err != nil {
		return err
	}
	path := cmpOr(*out, name+".cert.pem")
	if err := writeCertFile(path, cert); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Certified %s (key %s) as %s until %s; certificate in %s.\nThe technician installs it with: deskside technician install-cert %s\n",
		clean(name), envelope.Fingerprint(pub), *role, until, path, path)
	return err
}

// writeCertFile writes a certificate to hand over (it holds no secret).
func writeCertFile(path string, cert *desksidev1.TechnicianCertificate) error {
	raw, err := proto.Marshal(cert)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: certPEMType, Bytes: raw}), 0o644)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func readCert(path string) (*desksidev1.TechnicianCertificate, *desksidev1.TechnicianCertificateBody, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != certPEMType {
		return nil, nil, fmt.Errorf("%s: not a technician certificate (deskside technician certify writes one)", path)
	}
	c := &desksidev1.TechnicianCertificate{}
	if err := proto.Unmarshal(blk.Bytes, c); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	body, err := envelope.ParseCertificate(c)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, body, nil
}

func (e *runEnv) technicianInstallCert(args []string) error {
	fs := e.flags("technician install-cert", "\nInstalls the certificate an admin made for your key.")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errUsage(fs, "give the certificate file: deskside technician install-cert FILE")
	}
	_, body, err := readCert(pos[0])
	if err != nil {
		return err
	}
	keyPath, certPath, err := e.techPaths()
	if err != nil {
		return err
	}
	key, err := readKey(keyPath)
	if err != nil {
		return fmt.Errorf("%w; create your key first: deskside technician keygen", err)
	}
	if !key.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(body.GetPublicKey())) {
		return errors.New("this certificate is for another key; ask the admin to certify the key deskside technician keygen printed")
	}
	raw, _ := os.ReadFile(pos[0])
	if err := atomicfile.WriteFile(certPath, raw, 0o600); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Installed: you sign as %s (%s) until %s, for organisation key %s.\n", clean(body.GetTechnician()),
		envelope.TierName(body.GetTier()), body.GetNotAfter().AsTime().UTC().Format(time.DateOnly), envelope.Fingerprint(body.GetOrgPublicKey()))
	return err
}

func (e *runEnv) technicianRevoke(args []string) error {
	fs := e.flags("technician revoke", revokeHelp)
	orgKey := fs.String("org-key", "", "organisation key file (required)")
	name, err := technicianName(fs, args)
	if err != nil {
		return err
	}
	if *orgKey == "" {
		return errUsage(fs, "--org-key FILE is required")
	}
	org, err := readKey(*orgKey)
	if err != nil {
		return err
	}
	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := e.rpcContext()
	defer cancel()
	oc := desksidev1.NewOrgServiceClient(c.cc)
	cur, err := oc.GetRevocations(ctx, &desksidev1.GetRevocationsRequest{})
	if err != nil {
		return c.explain(err)
	}
	pub := org.Public().(ed25519.PublicKey)
	b := &desksidev1.RevocationListBody{}
	if l := cur.GetList(); l != nil {
		if b, err = envelope.ParseRevocations(pub, l); err != nil {
			return fmt.Errorf("the relay's revocation list: %w (check --org-key)", err)
		}
	}
	// The relay's copy is not trusted to be complete or current (an old
	// backup, or a compromised relay, would hand back a list without
	// earlier revocations): the last list signed here is kept next to the
	// organisation key, and the new one covers both.
	localFile := *orgKey + ".revocations"
	if raw, err := os.ReadFile(localFile); err == nil {
		l := &desksidev1.RevocationList{}
		if err := proto.Unmarshal(raw, l); err != nil {
			return fmt.Errorf("%s: %w (it holds the last revocation list signed with %s; restore it from a backup)", localFile, err, *orgKey)
		}
		local, err := envelope.ParseRevocations(pub, l)
		if err != nil {
			return fmt.Errorf("%s: %w (it is not signed by %s)", localFile, err, *orgKey)
		}
		if local.GetSerial() > b.GetSerial() {
			fmt.Fprintf(e.stderr, "warning: the relay holds revocation list %d, older than the %d signed here: it lost revocations (restored from a backup, or tampered with); the new list includes them again\n",
				b.GetSerial(), local.GetSerial())
		}
		b.Serial = max(b.GetSerial(), local.GetSerial())
		b.Technicians = unionStrings(b.GetTechnicians(), local.GetTechnicians())
		b.CertificateSerials = unionBytes(b.GetCertificateSerials(), local.GetCertificateSerials())
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", localFile, err)
	}
	b.Serial++
	b.Technicians = unionStrings(b.GetTechnicians(), []string{name})
	b.IssuedAt = timestamppb.New(time.Now())
	l, err := envelope.SignRevocations(org, b)
	if err != nil {
		return err
	}
	raw, err := proto.Marshal(l)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(localFile, raw, 0o600); err != nil {
		return fmt.Errorf("keep the signed revocation list next to the organisation key: %w", err)
	}
	if _, err := oc.PublishRevocations(ctx, &desksidev1.PublishRevocationsRequest{List: l}); err != nil {
		return c.explain(err)
	}
	_, err = fmt.Fprintf(e.stdout, "Revoked %s (revocation list %d); agents refuse their envelopes from their next request on.\n", clean(name), b.GetSerial())
	return err
}

// techSigner seals envelopes with the technician's certified key.
type techSigner struct {
	key  ed25519.PrivateKey
	cert *desksidev1.TechnicianCertificate
	body *desksidev1.TechnicianCertificateBody
}

// signer returns the technician's signer, nil when there is no
// certified key (requests go unsigned, as before organisation keys).
func (e *runEnv) signer() (*techSigner, error) {
	if e.signerDone {
		return e.signerMemo, nil
	}
	s, err := e.loadSigner()
	if err == nil {
		e.signerDone, e.signerMemo = true, s
	}
	return s, err
}

// loadSigner is signer without the memo.
func (e *runEnv) loadSigner() (*techSigner, error) {
	keyPath, certPath, err := e.techPaths()
	if err != nil {
		return nil, err
	}
	key, err := readKey(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	cert, body, err := readCert(certPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if body != nil && !key.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(body.GetPublicKey())) {
		return nil, fmt.Errorf("%s is for another key than %s; install the certificate of your key (deskside technician install-cert)", certPath, keyPath)
	}
	// No certificate here, or an expired one: the relay may hold the one
	// an admin published (checked against this key; agents check the
	// rest).
	if body == nil || !time.Now().Before(body.GetNotAfter().AsTime()) {
		c, b, err := e.fetchCert(key, body)
		if err != nil {
			fmt.Fprintf(e.stderr, "note: could not fetch your certificate from the relay: %v\n", err)
		} else if c != nil {
			cert, body = c, b
		}
	}
	if body == nil {
		fmt.Fprintln(e.stderr, "note: your technician key is not certified yet; the request goes unsigned (deskside technician status)")
		return nil, nil
	}
	if time.Now().After(body.GetNotAfter().AsTime()) {
		fmt.Fprintf(e.stderr, "note: your technician certificate expired on %s; ask an admin to certify your key again\n", body.GetNotAfter().AsTime().UTC().Format(time.DateOnly))
	}
	return &techSigner{key: key, cert: cert, body: body}, nil
}

// sign seals op for deviceIDs and returns ctx carrying the envelope; ctx
// as is when the technician has no certified key.
func (e *runEnv) sign(ctx context.Context, op proto.Message, deviceIDs []string) (context.Context, error) {
	s, err := e.signer()
	if err != nil || s == nil {
		return ctx, err
	}
	env, err := envelope.Seal(s.key, s.cert, op, deviceIDs, time.Now())
	if err != nil {
		return ctx, err
	}
	return envelope.WithCall(ctx, env, deviceIDs)
}

// unionStrings is a followed by the members of b it lacks.
func unionStrings(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// unionBytes is a followed by the members of b it lacks.
func unionBytes(a, b [][]byte) [][]byte {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.ContainsFunc(out, func(y []byte) bool { return bytes.Equal(x, y) }) {
			out = append(out, x)
		}
	}
	return out
}
