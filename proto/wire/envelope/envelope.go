// Package envelope signs and verifies the envelopes that carry a
// technician's privileged requests to agents (docs/adr 21): the
// organisation key certifies technician keys, a technician signs each
// request (operation, full arguments, device list, nonce, validity), and
// the agent verifies the chain against the organisation key it pins. The
// relay only carries envelopes. Both ends import this package; it imports
// no relay or agent code.
//
// Signing input: for each kind, the context string of that kind, a zero
// byte, then the deterministic protobuf encoding of the body message
// (proto.MarshalOptions{Deterministic: true}). Bodies travel as those
// bytes; a verifier checks the signature over the bytes received and only
// then decodes them, so nothing is re-encoded for comparison.
package envelope

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// Context strings, one per signed kind, so a signature of one kind is
// never valid as another.
const (
	ctxCertificate = "deskside technician certificate v1"
	ctxEnvelope    = "deskside envelope v1"
	ctxRevocations = "deskside revocation list v1"
	ctxOrgKey      = "deskside organisation key statement v1"
)

// Lifetime is how long an envelope the CLI signs is valid; MaxLifetime
// is the longest validity an agent accepts; Skew is the clock difference
// it tolerates.
const (
	Lifetime    = 60 * time.Second
	MaxLifetime = 5 * time.Minute
	Skew        = 30 * time.Second
)

// FingerprintLen is the length of a key fingerprint in characters.
const FingerprintLen = 43

var marshal = proto.MarshalOptions{Deterministic: true}

func signingInput(ctx string, body []byte) []byte {
	b := make([]byte, 0, len(ctx)+1+len(body))
	b = append(b, ctx...)
	b = append(b, 0)
	return append(b, body...)
}

func sign(key ed25519.PrivateKey, ctx string, m proto.Message) (body, sig []byte, err error) {
	body, err = marshal.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	return body, ed25519.Sign(key, signingInput(ctx, body)), nil
}

func verify(pub []byte, ctx string, body, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(ed25519.PublicKey(pub), signingInput(ctx, body), sig)
}

// Fingerprint is base64url (no padding) of the SHA-256 of an Ed25519
// public key: 43 characters, the form admins compare out of band.
func Fingerprint(pub []byte) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ParseFingerprint trims s and checks it has the form of a fingerprint.
func ParseFingerprint(s string) (string, error) {
	s = strings.TrimSpace(s)
	if b, err := base64.RawURLEncoding.DecodeString(s); err != nil || len(b) != sha256.Size {
		return "", errors.New("not an organisation key fingerprint (43 characters, as `deskside org init` prints it)")
	}
	return s, nil
}

// Certify signs a technician certificate with the organisation key. The
// org_public_key and serial fields are filled in.
func Certify(org ed25519.PrivateKey, b *desksidev1.TechnicianCertificateBody) (*desksidev1.TechnicianCertificate, error) {
	b = proto.Clone(b).(*desksidev1.TechnicianCertificateBody)
	b.OrgPublicKey = org.Public().(ed25519.PublicKey)
	if len(b.GetSerial()) == 0 {
		b.Serial = make([]byte, 16)
		rand.Read(b.Serial)
	}
	switch {
	case b.GetTechnician() == "":
		return nil, errors.New("certify: a technician name is required")
	case len(b.GetPublicKey()) != ed25519.PublicKeySize:
		return nil, errors.New("certify: the technician key is not an Ed25519 public key")
	case b.GetTier() == desksidev1.TechnicianTier_TECHNICIAN_TIER_UNSPECIFIED:
		return nil, errors.New("certify: a tier is required (tier1, tier2, tier3 or admin)")
	case b.GetNotAfter() == nil:
		return nil, errors.New("certify: an expiry is required")
	}
	body, sig, err := sign(org, ctxCertificate, b)
	if err != nil {
		return nil, err
	}
	return &desksidev1.TechnicianCertificate{Body: body, Signature: sig}, nil
}

// ParseCertificate verifies a certificate's signature against the
// organisation key it names and returns its body. Callers check that key
// against what they pin.
func ParseCertificate(c *desksidev1.TechnicianCertificate) (*desksidev1.TechnicianCertificateBody, error) {
	b := &desksidev1.TechnicianCertificateBody{}
	if err := proto.Unmarshal(c.GetBody(), b); err != nil {
		return nil, fmt.Errorf("technician certificate: %w", err)
	}
	if !verify(b.GetOrgPublicKey(), ctxCertificate, c.GetBody(), c.GetSignature()) {
		return nil, errors.New("technician certificate: signature does not verify")
	}
	return b, nil
}

// Seal signs an envelope for op (a *RunCommand, *RunAction or
// *DesktopOperation) on deviceIDs with the technician's key, valid for
// Lifetime from now.
func Seal(key ed25519.PrivateKey, cert *desksidev1.TechnicianCertificate, op proto.Message, deviceIDs []string, now time.Time) (*desksidev1.SignedEnvelope, error) {
	ids := SortedIDs(deviceIDs)
	if len(ids) == 0 {
		return nil, errors.New("seal: no device")
	}
	b := &desksidev1.EnvelopeBody{
		DevicesRoot: NewTree(ids).Root(),
		DeviceCount: uint32(len(ids)),
		Nonce:       make([]byte, 16),
		IssuedAt:    timestamppb.New(now),
		ExpiresAt:   timestamppb.New(now.Add(Lifetime)),
	}
	rand.Read(b.Nonce)
	switch o := op.(type) {
	case *desksidev1.RunCommand:
		b.Operation = &desksidev1.EnvelopeBody_Command{Command: o}
	case *desksidev1.RunAction:
		b.Operation = &desksidev1.EnvelopeBody_Action{Action: o}
	case *desksidev1.DesktopOperation:
		b.Operation = &desksidev1.EnvelopeBody_Desktop{Desktop: o}
	default:
		return nil, fmt.Errorf("seal: %T is not an operation that takes an envelope", op)
	}
	body, sig, err := sign(key, ctxEnvelope, b)
	if err != nil {
		return nil, err
	}
	return &desksidev1.SignedEnvelope{Body: body, Signature: sig, Certificate: cert}, nil
}

// SignRevocations signs a revocation list with the organisation key.
func SignRevocations(org ed25519.PrivateKey, b *desksidev1.RevocationListBody) (*desksidev1.RevocationList, error) {
	b = proto.Clone(b).(*desksidev1.RevocationListBody)
	b.OrgPublicKey = org.Public().(ed25519.PublicKey)
	body, sig, err := sign(org, ctxRevocations, b)
	if err != nil {
		return nil, err
	}
	return &desksidev1.RevocationList{Body: body, Signature: sig}, nil
}

// ParseRevocations verifies a revocation list against the organisation
// key pub and returns its body.
func ParseRevocations(pub []byte, l *desksidev1.RevocationList) (*desksidev1.RevocationListBody, error) {
	b := &desksidev1.RevocationListBody{}
	if err := proto.Unmarshal(l.GetBody(), b); err != nil {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	if !bytes.Equal(b.GetOrgPublicKey(), pub) || !verify(pub, ctxRevocations, l.GetBody(), l.GetSignature()) {
		return nil, errors.New("revocation list: not signed by the pinned organisation key")
	}
	return b, nil
}

// Revoked reports whether a revocation list names a certificate or its
// technician.
func Revoked(l *desksidev1.RevocationListBody, c *desksidev1.TechnicianCertificateBody) bool {
	if l == nil {
		return false
	}
	return slices.Contains(l.GetTechnicians(), c.GetTechnician()) ||
		slices.ContainsFunc(l.GetCertificateSerials(), func(s []byte) bool { return bytes.Equal(s, c.GetSerial()) })
}

// SignOrgKey signs a statement with key: publishing key itself (next nil)
// or handing over to next.
func SignOrgKey(key ed25519.PrivateKey, next ed25519.PublicKey, now time.Time) (*desksidev1.OrgKeyStatement, error) {
	b := &desksidev1.OrgKeyStatementBody{NewPublicKey: key.Public().(ed25519.PublicKey), IssuedAt: timestamppb.New(now)}
	if next != nil {
		b.OldPublicKey, b.NewPublicKey = b.NewPublicKey, next
	}
	body, sig, err := sign(key, ctxOrgKey, b)
	if err != nil {
		return nil, err
	}
	return &desksidev1.OrgKeyStatement{Body: body, Signature: sig}, nil
}

// VerifyOrgKey checks a statement against the fingerprint an agent pins
// and returns the key to pin from now on: the key itself when the
// statement publishes the pinned key, the new key when the pinned key
// hands over to it.
func VerifyOrgKey(pinned string, s *desksidev1.OrgKeyStatement) (ed25519.PublicKey, error) {
	b := &desksidev1.OrgKeyStatementBody{}
	if err := proto.Unmarshal(s.GetBody(), b); err != nil {
		return nil, fmt.Errorf("organisation key statement: %w", err)
	}
	signer := b.GetNewPublicKey()
	if len(b.GetOldPublicKey()) > 0 {
		signer = b.GetOldPublicKey()
	}
	if Fingerprint(signer) != pinned {
		return nil, errors.New("organisation key statement: not signed by the pinned key")
	}
	if !verify(signer, ctxOrgKey, s.GetBody(), s.GetSignature()) || len(b.GetNewPublicKey()) != ed25519.PublicKeySize {
		return nil, errors.New("organisation key statement: signature does not verify")
	}
	return ed25519.PublicKey(b.GetNewPublicKey()), nil
}
