package techkeys_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/sqlite"
	"github.com/deskside/deskside/relay/techkeys"
)

func open(t *testing.T, techs ...string) (*techkeys.Keys, store.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, n := range techs {
		if err := st.CreateTechnician(context.Background(), store.Technician{Name: n, PasswordHash: "x", Role: 1, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	return techkeys.New(st, nil), st
}

func newKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func certify(t *testing.T, org ed25519.PrivateKey, name string, pub ed25519.PublicKey, notAfter time.Time) *desksidev1.TechnicianCertificate {
	t.Helper()
	c, err := envelope.Certify(org, &desksidev1.TechnicianCertificateBody{Technician: name, PublicKey: pub,
		Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2, NotAfter: timestamppb.New(notAfter)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRegister(t *testing.T) {
	ctx := context.Background()
	k, _ := open(t, "alice")
	pub := newKey(t)
	key, created, err := k.Register(ctx, "alice", pub, "  cli on\x1b[31m host\n ")
	if err != nil || !created {
		t.Fatalf("register: %v %v", created, err)
	}
	if key.GetFingerprint() != envelope.Fingerprint(pub) || key.GetLabel() != "cli on host" || key.GetRegisteredAt() == nil {
		t.Errorf("stored key %v", key)
	}
	again, created, err := k.Register(ctx, "alice", pub, "other label")
	if err != nil || created || again.GetLabel() != "cli on host" {
		t.Errorf("re-registering: created %v, %v, label %q", created, err, again.GetLabel())
	}
	if _, _, err := k.Register(ctx, "alice", pub[:31], ""); !errors.Is(err, techkeys.ErrInvalid) {
		t.Errorf("short key: %v", err)
	}
	if _, _, err := k.Register(ctx, "alice", newKey(t), strings.Repeat("x", 500)); err != nil {
		t.Fatal(err)
	}
	keys, _ := k.List(ctx, "alice")
	if len(keys) != 2 || len([]rune(keys[1].GetLabel())) != techkeys.MaxLabel {
		t.Errorf("keys %d, long label cut to %d runes", len(keys), len([]rune(keys[1].GetLabel())))
	}
	for range techkeys.MaxKeys - 2 {
		if _, _, err := k.Register(ctx, "alice", newKey(t), ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := k.Register(ctx, "alice", newKey(t), ""); !errors.Is(err, techkeys.ErrTooMany) || !strings.Contains(err.Error(), "deskside technician delete-key") {
		t.Errorf("key %d: %v", techkeys.MaxKeys+1, err)
	}
	if _, err := k.Delete(ctx, "alice", key.GetFingerprint()); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Delete(ctx, "alice", key.GetFingerprint()); !errors.Is(err, techkeys.ErrNotFound) {
		t.Errorf("deleting twice: %v", err)
	}
	if keys, _ := k.List(ctx, "alice"); len(keys) != techkeys.MaxKeys-1 {
		t.Errorf("%d keys after delete", len(keys))
	}
}

// Concurrent registrations are serialized: none is lost.
func TestRegisterConcurrent(t *testing.T) {
	ctx := context.Background()
	k, _ := open(t, "alice", "bob")
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []string{"alice", "bob"}[i%2]
			if _, _, err := k.Register(ctx, name, newKey(t), ""); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	all, err := k.ListAll(ctx)
	if err != nil || len(all) != 6 {
		t.Fatalf("all keys: %d %v", len(all), err)
	}
	if all[0].GetTechnician() != "alice" || all[5].GetTechnician() != "bob" {
		t.Errorf("not listed by technician: %v, %v", all[0].GetTechnician(), all[5].GetTechnician())
	}
}

func TestPublish(t *testing.T) {
	ctx := context.Background()
	k, _ := open(t, "alice")
	orgPub, org, _ := ed25519.GenerateKey(rand.Reader)
	pub := newKey(t)
	if _, _, err := k.Register(ctx, "alice", pub, "cli"); err != nil {
		t.Fatal(err)
	}
	res, err := k.Publish(ctx, certify(t, org, "alice", pub, time.Now().Add(time.Hour)))
	if err != nil || res.Registered || res.Replaced || res.Key.GetCertificate() == nil || res.Key.GetLabel() != "cli" {
		t.Fatalf("publish: %+v %v", res, err)
	}
	res, err = k.Publish(ctx, certify(t, org, "alice", pub, time.Now().Add(2*time.Hour)))
	if err != nil || !res.Replaced {
		t.Fatalf("renewal: %+v %v", res, err)
	}
	other := newKey(t)
	res, err = k.Publish(ctx, certify(t, org, "alice", other, time.Now().Add(time.Hour)))
	if err != nil || !res.Registered || res.Key.GetLabel() != techkeys.CertifiedLabel {
		t.Fatalf("unregistered key: %+v %v", res, err)
	}
	if keys, _ := k.List(ctx, "alice"); len(keys) != 2 || keys[0].GetCertificate() == nil || keys[1].GetCertificate() == nil {
		t.Errorf("keys after publishing: %v", keys)
	}

	forged := certify(t, org, "alice", pub, time.Now().Add(time.Hour))
	forged.Signature[0] ^= 1
	expired := certify(t, org, "alice", pub, time.Now().Add(-time.Minute))
	for name, tc := range map[string]struct {
		cert *desksidev1.TechnicianCertificate
		want error
	}{
		"bad signature":      {forged, techkeys.ErrInvalid},
		"expired":            {expired, techkeys.ErrInvalid},
		"unknown technician": {certify(t, org, "mallory", pub, time.Now().Add(time.Hour)), techkeys.ErrNotFound},
		"empty":              {&desksidev1.TechnicianCertificate{}, techkeys.ErrInvalid},
	} {
		if _, err := k.Publish(ctx, tc.cert); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}

	// With an organisation key chain, only its key's certificates.
	k.OrgFingerprint = func(context.Context) (string, error) { return envelope.Fingerprint(orgPub), nil }
	if _, err := k.Publish(ctx, certify(t, org, "alice", pub, time.Now().Add(time.Hour))); err != nil {
		t.Errorf("certificate of the relay's organisation key: %v", err)
	}
	_, otherOrg, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := k.Publish(ctx, certify(t, otherOrg, "alice", pub, time.Now().Add(time.Hour))); !errors.Is(err, techkeys.ErrWrongOrg) ||
		!strings.Contains(err.Error(), envelope.Fingerprint(orgPub)) {
		t.Errorf("certificate of another organisation key: %v", err)
	}
	k.OrgFingerprint = func(context.Context) (string, error) { return "", errors.New("chain does not verify") }
	if _, err := k.Publish(ctx, certify(t, org, "alice", pub, time.Now().Add(time.Hour))); err == nil {
		t.Error("published while the relay's organisation key chain is unreadable")
	}
}
