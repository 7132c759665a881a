package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/agent/command"
	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/agent/orgtrust"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/bus/natsbus/natstest"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
)

// logBuf is a log destination tests read while agents write.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// orgAgent is a real agent with its organisation trust guard.
type orgAgent struct {
	st    *enroll.State
	guard *orgtrust.Guard
	log   *logBuf
	agent *servertest.Agent
}

func startOrgAgent(t *testing.T, st *enroll.State) *orgAgent {
	t.Helper()
	lb := &logBuf{}
	log := slog.New(slog.NewTextHandler(lb, nil))
	g, err := orgtrust.Open(st.Dir, st.DeviceID, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: &fakeInventory{inv: sampleInventory()}, Health: fakeSampler{}, Hostname: "org-host",
		Commands: command.New(command.Options{Logger: log}), Guard: g,
	})
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !a.Link.Connected() {
			return errNotYet
		}
		return nil
	})
	return &orgAgent{st: st, guard: g, log: lb, agent: a}
}

// pins waits until the agent pins fp, in memory and on disk.
func (a *orgAgent) pins(t *testing.T, fp, source string) {
	t.Helper()
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		disk, how, err := orgtrust.ReadPin(a.st.Dir)
		if err != nil {
			return err
		}
		if got := a.guard.Pinned(); got != fp || disk != fp || how != source {
			return fmt.Errorf("agent pins %q (disk %q, source %q), want %q from %s; log:\n%s", got, disk, how, fp, source, a.log.String())
		}
		return nil
	})
}

func newOrgKey(t *testing.T) (ed25519.PrivateKey, string) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key, envelope.Fingerprint(pub)
}

func orgStatement(t *testing.T, key ed25519.PrivateKey, next ed25519.PrivateKey) *desksidev1.OrgKeyStatement {
	t.Helper()
	var nextPub ed25519.PublicKey
	if next != nil {
		nextPub = next.Public().(ed25519.PublicKey)
	}
	s, err := envelope.SignOrgKey(key, nextPub, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOrgKeyChainThroughRelay: admins publish the organisation key and
// hand it over on a real relay; real agents pin it and follow it, and a
// relay that sends a chain of its own moves no pin.
func TestOrgKeyChainThroughRelay(t *testing.T) {
	r := servertest.Start(t, servertest.Options{Modify: func(c *server.Config) { c.OrgKeyRefresh = 50 * time.Millisecond }})
	cs, ctx := r.Admin(t)
	org := desksidev1.NewOrgServiceClient(r.Dial(t))

	if resp, err := org.GetOrgKey(ctx, &desksidev1.GetOrgKeyRequest{}); err != nil || resp.GetFingerprint() != "" || len(resp.GetStatements()) != 0 {
		t.Fatalf("no key yet: %v %v", resp, err)
	}
	if tok, err := wire.ParseToken(r.Token(t, time.Hour, 1)); err != nil || tok.OrgFingerprint != "" {
		t.Fatalf("token before any key: %+v %v", tok, err)
	}

	keyA, fpA := newOrgKey(t)
	keyB, fpB := newOrgKey(t)
	keyX, fpX := newOrgKey(t)

	// Agents enrolled before any key was published: unpinned, connected
	// now (the publication is pushed to it), unpinned, connecting after
	// it (gets it after Welcome), and one its root pinned to X by hand.
	early := startOrgAgent(t, r.Enroll(t, "early"))
	lateState := r.Enroll(t, "late")
	local := r.Enroll(t, "local")
	if err := orgtrust.PinFrom(local.Dir, fpX, orgtrust.SourceLocal); err != nil {
		t.Fatal(err)
	}
	localAgent := startOrgAgent(t, local)

	// The relay's rules, through the RPC.
	if _, err := org.PublishOrgKey(ctx, &desksidev1.PublishOrgKeyRequest{Statement: orgStatement(t, keyA, keyB)}); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "deskside org publish") {
		t.Fatalf("hand-over before any key: %v", err)
	}
	resp, err := org.PublishOrgKey(ctx, &desksidev1.PublishOrgKeyRequest{Statement: orgStatement(t, keyA, nil)})
	if err != nil || resp.GetFingerprint() != fpA {
		t.Fatalf("publish: %v %v", resp, err)
	}
	if resp, err := org.PublishOrgKey(ctx, &desksidev1.PublishOrgKeyRequest{Statement: orgStatement(t, keyA, nil)}); err != nil || resp.GetFingerprint() != fpA {
		t.Fatalf("publish again: %v %v", resp, err)
	}
	if _, err := org.PublishOrgKey(ctx, &desksidev1.PublishOrgKeyRequest{Statement: orgStatement(t, keyX, nil)}); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "deskside org rotate") {
		t.Fatalf("another self-signed key: %v", err)
	}
	if _, err := org.PublishOrgKey(ctx, &desksidev1.PublishOrgKeyRequest{Statement: orgStatement(t, keyX, keyB)}); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), fpA) {
		t.Fatalf("hand-over signed by a key that is not current: %v", err)
	}
	bad := orgStatement(t, keyA, keyB)
	bad.Signature[3] ^= 1
	if _, err := org.PublishOrgKey(ctx, &desksidev1.PublishOrgKeyRequest{Statement: bad}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad signature: %v", err)
	}
	got, err := org.GetOrgKey(ctx, &desksidev1.GetOrgKeyRequest{})
	if err != nil || got.GetFingerprint() != fpA || len(got.GetStatements()) != 1 {
		t.Fatalf("chain after the refusals: %v %v", got, err)
	}
	addTechnician(t, r, "tier2", desksidev1.Role_ROLE_TIER2)
	_, tctx := r.Console(t, "tier2", "tier-two-password")
	if _, err := org.PublishOrgKey(tctx, &desksidev1.PublishOrgKeyRequest{Statement: orgStatement(t, keyA, nil)}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("tier2 publishes: %v", err)
	}
	if got, err := org.GetOrgKey(tctx, &desksidev1.GetOrgKeyRequest{}); err != nil || got.GetFingerprint() != fpA {
		t.Fatalf("tier2 reads the chain: %v %v", got, err)
	}

	// Existing unpinned agents pin A once; a pin given by root stays.
	early.pins(t, fpA, orgtrust.SourceRelay)
	late := startOrgAgent(t, lateState)
	late.pins(t, fpA, orgtrust.SourceRelay)
	if !strings.Contains(early.log.String(), "pinned the organisation key the relay published") {
		t.Errorf("the agent log does not say how the key was pinned:\n%s", early.log.String())
	}
	localAgent.pins(t, fpX, orgtrust.SourceLocal)

	// New tokens carry A; an agent enrolled with one pins it.
	tokStr := r.Token(t, time.Hour, 1)
	if tok, err := wire.ParseToken(tokStr); err != nil || tok.OrgFingerprint != fpA || strings.Count(tokStr, ".") != 3 {
		t.Fatalf("token after publish: %q %v", tokStr, err)
	}
	st, err := enroll.Enroll(context.Background(), enroll.Options{Relay: r.Addr, Token: tokStr, StateDir: t.TempDir(), Hostname: "fresh", Version: "test", MachineID: servertest.NewMachineID()})
	if err != nil || st.OrgFingerprint != fpA {
		t.Fatalf("enroll with a 4-part token: %v", err)
	}
	fresh := startOrgAgent(t, st)
	fresh.pins(t, fpA, orgtrust.SourceToken)
	// A token never replaces a pin the machine has.
	pinnedDir := t.TempDir()
	if err := orgtrust.PinFrom(pinnedDir, fpX, orgtrust.SourceLocal); err != nil {
		t.Fatal(err)
	}
	_, err = enroll.Enroll(context.Background(), enroll.Options{Relay: r.Addr, Token: r.Token(t, time.Hour, 1), StateDir: pinnedDir, Hostname: "pinned", Version: "test", MachineID: servertest.NewMachineID()})
	if err == nil || !strings.Contains(err.Error(), "deskside-agent org pin --replace "+fpA) {
		t.Fatalf("enroll of a machine pinning another key: %v", err)
	}

	// Commands: a certificate of the pinned key runs; the relay's own
	// does not.
	dir := t.TempDir()
	runOn := func(t *testing.T, a *orgAgent, tech techKey, name string) bool {
		t.Helper()
		rc := &desksidev1.RunCommand{Command: "touch " + filepath.Join(dir, name)}
		cctx := ctx
		if tech.key != nil {
			var err error
			if cctx, err = envelope.WithCall(ctx, tech.seal(t, rc, []string{a.st.DeviceID}, time.Now()), []string{a.st.DeviceID}); err != nil {
				t.Fatal(err)
			}
		}
		res, err := runCmd(cctx, cs, &desksidev1.RunCommandRequest{DeviceId: a.st.DeviceID, Command: rc}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, statErr := os.Stat(filepath.Join(dir, name))
		ex := res.exits[a.st.DeviceID]
		if ran := statErr == nil; ran != (ex.GetError() == "") {
			t.Fatalf("exit %v but file created %v", ex, ran)
		}
		return statErr == nil
	}
	techA := newTech(t, keyA, "alice", desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2)
	if !runOn(t, early, techA, "early-a") || !runOn(t, fresh, techA, "fresh-a") {
		t.Fatal("a command signed under the pinned key did not run")
	}
	if runOn(t, early, techKey{}, "early-unsigned") {
		t.Fatal("a pinned agent ran an unsigned command")
	}

	// A compromised relay sends a chain of its own key (valid as a chain,
	// so the relay itself distributes it): no agent moves.
	keyR, _ := newOrgKey(t)
	keyR2, _ := newOrgKey(t)
	own, _ := proto.Marshal(&desksidev1.OrgKeyUpdate{Statements: []*desksidev1.OrgKeyStatement{orgStatement(t, keyR, nil), orgStatement(t, keyR, keyR2)}})
	saved, err := r.Srv.Store().GetRelaySetting(context.Background(), "org.keys")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Srv.Store().PutRelaySetting(context.Background(), "org.keys", own); err != nil {
		t.Fatal(err)
	}
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(early.log.String(), "ignoring the relay's organisation key statements that the pinned key did not sign") {
			return errNotYet
		}
		return nil
	})
	early.pins(t, fpA, orgtrust.SourceRelay)
	techR := newTech(t, keyR2, "mallory", desksidev1.TechnicianTier_TECHNICIAN_TIER_ADMIN)
	if runOn(t, early, techR, "early-relay") {
		t.Fatal("an agent ran a command certified by the relay's own key")
	}
	if err := r.Srv.Store().PutRelaySetting(context.Background(), "org.keys", saved); err != nil {
		t.Fatal(err)
	}

	// The hand-over A → B moves every agent pinning A; not the one
	// pinning X.
	resp, err = org.PublishOrgKey(ctx, &desksidev1.PublishOrgKeyRequest{Statement: orgStatement(t, keyA, keyB)})
	if err != nil || resp.GetFingerprint() != fpB {
		t.Fatalf("hand-over: %v %v", resp, err)
	}
	early.pins(t, fpB, orgtrust.SourceHandOver)
	late.pins(t, fpB, orgtrust.SourceHandOver)
	fresh.pins(t, fpB, orgtrust.SourceHandOver)
	localAgent.pins(t, fpX, orgtrust.SourceLocal)
	techB := newTech(t, keyB, "alice", desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2)
	if !runOn(t, early, techB, "early-b") {
		t.Fatal("a command certified by the new key did not run")
	}
	if runOn(t, early, techA, "early-a-after") {
		t.Fatal("a command certified by the old key ran after the hand-over")
	}
	// The pin survives a restart.
	if g, err := orgtrust.Open(early.st.Dir, early.st.DeviceID, servertest.DiscardLogger(), nil); err != nil || g.Pinned() != fpB {
		t.Fatalf("pin after restart: %v", err)
	}
	// A token now carries B; a 3-part token still enrolls (old tokens).
	if tok, err := wire.ParseToken(r.Token(t, time.Hour, 1)); err != nil || tok.OrgFingerprint != fpB {
		t.Fatalf("token after the hand-over: %+v %v", tok, err)
	}

	evs, err := r.Srv.Store().ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var published, handedOver int
	for _, e := range evs {
		switch {
		case e.Action == "org.key.publish" && e.Target == fpA:
			published++
		case e.Action == "org.key.handover" && e.Target == fpB && strings.Contains(e.Detail, fpA):
			handedOver++
		}
	}
	if published != 1 || handedOver != 1 {
		t.Errorf("audit: %d publications, %d hand-overs; want 1 each", published, handedOver)
	}
}

func addTechnician(t *testing.T, r *servertest.Relay, name string, role desksidev1.Role) {
	t.Helper()
	h, err := auth.HashPassword("tier-two-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Srv.Store().CreateTechnician(context.Background(), store.Technician{Name: name, PasswordHash: h, Role: int(role), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// TestOrgKeyAcrossRelays: a statement published on one relay of a pair
// (one PostgreSQL, one NATS) reaches the agents connected to the other,
// which re-reads the chain every OrgKeyRefresh.
func TestOrgKeyAcrossRelays(t *testing.T) {
	dsn := pgtest.DSN(t)
	natsURL := natstest.URL(t)
	prefix := natstest.Prefix()
	a, b := servertest.StartPair(t, servertest.Options{Database: dsn, NATSURL: natsURL, NATSPrefix: prefix, Modify: func(c *server.Config) {
		c.OrgKeyRefresh = 100 * time.Millisecond
	}})
	agent := startOrgAgent(t, a.Enroll(t, "behind-a"))

	keyA, fpA := newOrgKey(t)
	keyB, fpB := newOrgKey(t)
	_, ctx := b.Admin(t)
	org := desksidev1.NewOrgServiceClient(b.Dial(t))
	if _, err := org.PublishOrgKey(ctx, &desksidev1.PublishOrgKeyRequest{Statement: orgStatement(t, keyA, nil)}); err != nil {
		t.Fatal(err)
	}
	agent.pins(t, fpA, orgtrust.SourceRelay)
	if _, err := org.PublishOrgKey(ctx, &desksidev1.PublishOrgKeyRequest{Statement: orgStatement(t, keyA, keyB)}); err != nil {
		t.Fatal(err)
	}
	agent.pins(t, fpB, orgtrust.SourceHandOver)
	// Relay A's tokens carry the key published on B.
	if tok, err := wire.ParseToken(a.Token(t, time.Hour, 1)); err != nil || tok.OrgFingerprint != fpB {
		t.Fatalf("token from relay A: %+v %v", tok, err)
	}
}
