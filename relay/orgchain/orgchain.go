// Package orgchain keeps the organisation key chain a relay distributes
// (docs/adr 22): a self-signed statement publishing the first key, then
// hand-overs, each signed by the key before it. The relay holds no
// organisation key and decides nothing for agents: it stores a chain that
// verifies, so that an admin's mistake is refused at once rather than
// ignored by every agent, and agents check every statement themselves
// against what they pin.
package orgchain

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

// MaxStatements bounds a chain: a rotation a month for eight years.
const MaxStatements = 100

// ErrBadStatement marks a statement that is malformed or whose signature
// does not verify, as opposed to one that does not fit the chain.
var ErrBadStatement = errors.New("organisation key statement")

// Change is what appending a statement did.
type Change int

// The changes Append reports.
const (
	// Unchanged: the statement republishes the current key; nothing stored.
	Unchanged Change = iota
	// Published: the first key, self-signed.
	Published
	// HandedOver: the current key handed over to a new one.
	HandedOver
)

// Statement is one verified statement: the key it makes current and the
// key that signed it (nil for a self-signed one).
type Statement struct {
	New, Old ed25519.PublicKey
}

// body decodes a statement's body (its signature is checked by
// envelope.VerifyOrgKey before anything is used).
func body(s *desksidev1.OrgKeyStatement) (*desksidev1.OrgKeyStatementBody, error) {
	b := &desksidev1.OrgKeyStatementBody{}
	if err := proto.Unmarshal(s.GetBody(), b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadStatement, err)
	}
	if len(b.GetNewPublicKey()) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: the new key is not an Ed25519 public key", ErrBadStatement)
	}
	if n := len(b.GetOldPublicKey()); n != 0 && n != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: the old key is not an Ed25519 public key", ErrBadStatement)
	}
	return b, nil
}

// check verifies one statement on its own and returns what it says.
func check(s *desksidev1.OrgKeyStatement) (Statement, error) {
	b, err := body(s)
	if err != nil {
		return Statement{}, err
	}
	st := Statement{New: b.GetNewPublicKey()}
	signer := st.New
	if len(b.GetOldPublicKey()) > 0 {
		st.Old = b.GetOldPublicKey()
		signer = st.Old
		if st.Old.Equal(st.New) {
			return Statement{}, fmt.Errorf("%w: a hand-over to the same key", ErrBadStatement)
		}
	}
	if _, err := envelope.VerifyOrgKey(envelope.Fingerprint(signer), s); err != nil {
		return Statement{}, fmt.Errorf("%w: the signature does not verify", ErrBadStatement)
	}
	return st, nil
}

// Current verifies a whole chain and returns its current key, nil for an
// empty chain.
func Current(u *desksidev1.OrgKeyUpdate) (ed25519.PublicKey, error) {
	if len(u.GetStatements()) > MaxStatements {
		return nil, fmt.Errorf("organisation key chain: %d statements, more than %d", len(u.GetStatements()), MaxStatements)
	}
	var cur ed25519.PublicKey
	var seen [][]byte
	for i, s := range u.GetStatements() {
		st, err := check(s)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %w", i+1, err)
		}
		switch {
		case i == 0 && st.Old != nil:
			return nil, errors.New("statement 1: the chain must start with a self-signed key")
		case i > 0 && (st.Old == nil || !st.Old.Equal(cur)):
			return nil, fmt.Errorf("statement %d: not a hand-over signed by the key before it", i+1)
		}
		for _, k := range seen {
			if bytes.Equal(k, st.New) {
				return nil, fmt.Errorf("statement %d: hands over to a key used before", i+1)
			}
		}
		cur = st.New
		seen = append(seen, cur)
	}
	return cur, nil
}

// Fingerprint is the fingerprint of a chain's current key, "" for none.
func Fingerprint(u *desksidev1.OrgKeyUpdate) string {
	cur, err := Current(u)
	if err != nil || cur == nil {
		return ""
	}
	return envelope.Fingerprint(cur)
}

// Append adds s to the verified chain u and returns the new chain. The
// first statement must publish a key signed by itself; every later one
// must be a hand-over signed by the current key; a self-signed statement
// of the current key changes nothing. Errors name the command that makes
// an acceptable statement.
func Append(u *desksidev1.OrgKeyUpdate, s *desksidev1.OrgKeyStatement) (*desksidev1.OrgKeyUpdate, Change, error) {
	cur, err := Current(u)
	if err != nil {
		return nil, 0, fmt.Errorf("the chain the relay holds does not verify (%w); restore the relay setting org.keys from a backup", err)
	}
	st, err := check(s)
	if err != nil {
		return nil, 0, fmt.Errorf("%w; sign it again with deskside org publish --org-key FILE (or deskside org rotate)", err)
	}
	fp := envelope.Fingerprint(st.New)
	switch {
	case cur == nil && st.Old != nil:
		return nil, 0, fmt.Errorf("the relay holds no organisation key yet, so there is nothing to hand over from: publish the key first with deskside org publish --org-key FILE")
	case cur == nil:
		return &desksidev1.OrgKeyUpdate{Statements: []*desksidev1.OrgKeyStatement{s}}, Published, nil
	case st.Old == nil && st.New.Equal(cur):
		return u, Unchanged, nil
	case st.Old == nil:
		return nil, 0, fmt.Errorf("the relay's organisation key is %s; key %s replaces it only through a hand-over signed with it: deskside org rotate --org-key CURRENT-KEY-FILE --new-key NEW-KEY-FILE",
			envelope.Fingerprint(cur), fp)
	case !st.Old.Equal(cur):
		return nil, 0, fmt.Errorf("this hand-over is signed by key %s, but the relay's organisation key is %s: sign the hand-over with that key (deskside org rotate --org-key CURRENT-KEY-FILE --new-key NEW-KEY-FILE; deskside org show prints the chain)",
			envelope.Fingerprint(st.Old), envelope.Fingerprint(cur))
	case len(u.GetStatements()) >= MaxStatements:
		return nil, 0, fmt.Errorf("the organisation key chain holds %d statements, the most a relay keeps", MaxStatements)
	}
	next := &desksidev1.OrgKeyUpdate{Statements: append(append([]*desksidev1.OrgKeyStatement{}, u.GetStatements()...), s)}
	if _, err := Current(next); err != nil {
		return nil, 0, fmt.Errorf("%w; create a new key with deskside org rotate (a key used before cannot come back)", err)
	}
	return next, HandedOver, nil
}
