package orgtrust

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type orgKey struct {
	priv ed25519.PrivateKey
	fp   string
}

func newKey(t *testing.T) orgKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return orgKey{priv, envelope.Fingerprint(pub)}
}

func (k orgKey) self(t *testing.T) *desksidev1.OrgKeyStatement {
	t.Helper()
	s, err := envelope.SignOrgKey(k.priv, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (k orgKey) to(t *testing.T, next orgKey) *desksidev1.OrgKeyStatement {
	t.Helper()
	s, err := envelope.SignOrgKey(k.priv, next.priv.Public().(ed25519.PublicKey), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func chainOf(s ...*desksidev1.OrgKeyStatement) *desksidev1.OrgKeyUpdate {
	return &desksidev1.OrgKeyUpdate{Statements: s}
}

func openGuard(t *testing.T, dir string) (*Guard, *syncBuf) {
	t.Helper()
	buf := &syncBuf{}
	g, err := Open(dir, "dev-1", slog.New(slog.NewTextHandler(buf, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return g, buf
}

func pinned(t *testing.T, g *Guard, dir, fp, source string) {
	t.Helper()
	disk, how, err := ReadPin(dir)
	if err != nil || g.Pinned() != fp || disk != fp || how != source {
		t.Fatalf("pinned %q (disk %q from %q, %v), want %q from %q", g.Pinned(), disk, how, err, fp, source)
	}
}

// TestChainFirstStatement: an agent that never pinned takes the first,
// self-signed statement once; one that had a pin (even removed since)
// takes nothing from its relay.
func TestChainFirstStatement(t *testing.T) {
	a, b := newKey(t), newKey(t)

	dir := t.TempDir()
	g, log := openGuard(t, dir)
	g.OrgKeyUpdate(chainOf(a.to(t, b))) // not self-signed
	if g.Pinned() != "" {
		t.Fatal("pinned from a chain without a self-signed start")
	}
	bad := a.self(t)
	bad.Signature[0] ^= 1
	g.OrgKeyUpdate(chainOf(bad))
	if g.Pinned() != "" {
		t.Fatal("pinned a statement whose signature does not verify")
	}
	// The first statement pins A, and the hand-over after it moves on to B.
	g.OrgKeyUpdate(chainOf(a.self(t), a.to(t, b)))
	pinned(t, g, dir, b.fp, SourceHandOver)
	if !strings.Contains(log.String(), a.fp) || !strings.Contains(log.String(), "relay's first, self-signed statement") {
		t.Errorf("the log does not say which key was pinned how:\n%s", log)
	}
	// A new self-signed key from the relay is ignored once pinned.
	c := newKey(t)
	g.OrgKeyUpdate(chainOf(c.self(t)))
	pinned(t, g, dir, b.fp, SourceHandOver)
	if !strings.Contains(log.String(), "ignoring the relay's organisation key statements") {
		t.Errorf("no log line for the ignored key:\n%s", log)
	}

	// An agent whose pin was removed (it had one) is not re-pinned by
	// its relay.
	dir2 := t.TempDir()
	if err := PinFrom(dir2, a.fp, SourceToken); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir2, PinFile))
	g2, _ := openGuard(t, dir2)
	g2.OrgKeyUpdate(chainOf(c.self(t)))
	if fp, _, _ := ReadPin(dir2); g2.Pinned() != "" || fp != "" {
		t.Fatal("an agent that had a pin took one from its relay")
	}
}

// TestChainHandOvers: once pinned, the pin follows only hand-overs the
// pinned key signed, in order; forged ones are ignored; root's pin on
// disk wins.
func TestChainHandOvers(t *testing.T) {
	a, b, c, r := newKey(t), newKey(t), newKey(t), newKey(t)
	dir := t.TempDir()
	if err := PinFrom(dir, a.fp, SourceLocal); err != nil {
		t.Fatal(err)
	}
	g, log := openGuard(t, dir)

	// A forged hand-over: it names A as the old key, but the relay's key
	// R signed it.
	forged := r.to(t, c)
	forged.Body = a.to(t, c).GetBody()
	g.OrgKeyUpdate(chainOf(a.self(t), forged))
	pinned(t, g, dir, a.fp, SourceLocal)
	if !strings.Contains(log.String(), "forged") {
		t.Errorf("no log line for the forged hand-over:\n%s", log)
	}
	// The relay's own chain (R, R → C) moves nothing.
	g.OrgKeyUpdate(chainOf(r.self(t), r.to(t, c)))
	pinned(t, g, dir, a.fp, SourceLocal)

	// Hand-overs in order: A → B → C; history before the pin is skipped.
	g.OrgKeyUpdate(chainOf(a.self(t), a.to(t, b), b.to(t, c)))
	pinned(t, g, dir, c.fp, SourceHandOver)
	g.OrgKeyUpdate(chainOf(a.self(t), a.to(t, b)))
	pinned(t, g, dir, c.fp, SourceHandOver)

	// Root re-pins by hand while the agent runs: the next update starts
	// from the pin on disk.
	if err := PinFrom(dir, a.fp, SourceLocal); err != nil {
		t.Fatal(err)
	}
	g.OrgKeyUpdate(chainOf(a.self(t)))
	pinned(t, g, dir, a.fp, SourceLocal)

	// Too long a chain is not looked at.
	long := chainOf(a.self(t))
	for range maxChain {
		long.Statements = append(long.Statements, a.self(t))
	}
	long.Statements = append(long.Statements, a.to(t, b))
	g.OrgKeyUpdate(long)
	pinned(t, g, dir, a.fp, SourceLocal)
}
