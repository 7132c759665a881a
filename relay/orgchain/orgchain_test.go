package orgchain

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

func key(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func stmt(t *testing.T, k ed25519.PrivateKey, next ed25519.PublicKey) *desksidev1.OrgKeyStatement {
	t.Helper()
	s, err := envelope.SignOrgKey(k, next, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestChainRules: the first statement must be self-signed, later ones
// hand-overs signed by the current key; republishing the current key
// changes nothing; anything else is refused naming the command to run.
func TestChainRules(t *testing.T) {
	a, b, c, x := key(t), key(t), key(t), key(t)
	var u *desksidev1.OrgKeyUpdate

	if _, _, err := Append(u, stmt(t, a, pub(b))); err == nil || !strings.Contains(err.Error(), "deskside org publish") {
		t.Fatalf("hand-over first: %v", err)
	}
	u, ch, err := Append(u, stmt(t, a, nil))
	if err != nil || ch != Published || Fingerprint(u) != envelope.Fingerprint(pub(a)) {
		t.Fatalf("publish: %v %v", ch, err)
	}
	same, ch, err := Append(u, stmt(t, a, nil))
	if err != nil || ch != Unchanged || len(same.GetStatements()) != 1 {
		t.Fatalf("republish: %v %v", ch, err)
	}
	if _, _, err := Append(u, stmt(t, x, nil)); err == nil || !strings.Contains(err.Error(), "deskside org rotate") {
		t.Fatalf("another self-signed key replaced the current one: %v", err)
	}
	if _, _, err := Append(u, stmt(t, x, pub(c))); err == nil || !strings.Contains(err.Error(), envelope.Fingerprint(pub(x))) {
		t.Fatalf("a hand-over signed by a key that is not current: %v", err)
	}
	forged := stmt(t, x, pub(c))
	forged.Body = stmt(t, a, pub(c)).Body // a's hand-over body, x's signature
	if _, _, err := Append(u, forged); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("forged hand-over: %v", err)
	}
	u, ch, err = Append(u, stmt(t, a, pub(b)))
	if err != nil || ch != HandedOver || Fingerprint(u) != envelope.Fingerprint(pub(b)) {
		t.Fatalf("hand-over: %v %v", ch, err)
	}
	if _, _, err := Append(u, stmt(t, a, pub(c))); err == nil {
		t.Fatal("the old key handed over again after its hand-over")
	}
	if _, _, err := Append(u, stmt(t, b, pub(a))); err == nil || !strings.Contains(err.Error(), "used before") {
		t.Fatalf("hand-over back to an earlier key: %v", err)
	}
	if _, _, err := Append(u, stmt(t, b, pub(b))); err == nil {
		t.Fatal("hand-over to the same key accepted")
	}
	u, _, err = Append(u, stmt(t, b, pub(c)))
	if err != nil || len(u.GetStatements()) != 3 {
		t.Fatal(err)
	}
	if cur, err := Current(u); err != nil || !cur.Equal(pub(c)) {
		t.Fatalf("current: %v", err)
	}
	// A chain whose order was changed does not verify.
	bad := &desksidev1.OrgKeyUpdate{Statements: []*desksidev1.OrgKeyStatement{u.Statements[0], u.Statements[2]}}
	if _, err := Current(bad); err == nil {
		t.Fatal("a chain with a gap verified")
	}
	if _, _, err := Append(bad, stmt(t, c, nil)); err == nil || !strings.Contains(err.Error(), "org.keys") {
		t.Fatalf("append to a broken chain: %v", err)
	}
}
