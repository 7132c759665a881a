package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/server/servertest"
)

// orgClient signs name in and returns an OrgService client with the
// session.
func orgClient(t *testing.T, r *servertest.Relay, name, pw string) (desksidev1.OrgServiceClient, context.Context) {
	t.Helper()
	_, ctx := r.Console(t, name, pw)
	md, _ := metadata.FromOutgoingContext(ctx)
	return desksidev1.NewOrgServiceClient(r.Dial(t)), metadata.NewOutgoingContext(ctx, md)
}

// TestTechnicianKeys goes through the OrgService key methods on a real
// relay: who may register, list, certify and delete whose keys, what is
// audited, and the organisation key chain check.
func TestTechnicianKeys(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	addTechTo(t, r, "t1", "tier-one-password", desksidev1.Role_ROLE_TIER1)
	addTechTo(t, r, "t2", "tier-two-password", desksidev1.Role_ROLE_TIER2)
	t1, ctx1 := orgClient(t, r, "t1", "tier-one-password")
	t2, ctx2 := orgClient(t, r, "t2", "tier-two-password")
	admin, actx := orgClient(t, r, "admin", servertest.AdminPassword)
	orgPub, org, _ := ed25519.GenerateKey(rand.Reader)

	pub1, _, _ := ed25519.GenerateKey(rand.Reader)
	reg, err := t1.RegisterTechnicianKey(ctx1, &desksidev1.RegisterTechnicianKeyRequest{PublicKey: pub1, Label: "cli on host"})
	if err != nil || reg.GetKey().GetTechnician() != "t1" || reg.GetKey().GetFingerprint() != envelope.Fingerprint(pub1) {
		t.Fatalf("register: %v %v", reg, err)
	}
	auditHas(t, r, "t1", "technician.key.register", "t1")
	if _, err := t1.RegisterTechnicianKey(ctx1, &desksidev1.RegisterTechnicianKeyRequest{PublicKey: []byte("short")}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("short key: %v", err)
	}
	pub2, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := t2.RegisterTechnicianKey(ctx2, &desksidev1.RegisterTechnicianKeyRequest{PublicKey: pub2}); err != nil {
		t.Fatal(err)
	}

	t.Run("tier1 sees only their own keys", func(t *testing.T) {
		own, err := t1.ListTechnicianKeys(ctx1, &desksidev1.ListTechnicianKeysRequest{})
		if err != nil || len(own.GetKeys()) != 1 || own.GetKeys()[0].GetLabel() != "cli on host" {
			t.Fatalf("own keys: %v %v", own, err)
		}
		for name, req := range map[string]*desksidev1.ListTechnicianKeysRequest{
			"another's": {Technician: "t2"},
			"all":       {All: true},
		} {
			if _, err := t1.ListTechnicianKeys(ctx1, req); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "only an admin") {
				t.Errorf("tier1 lists %s keys: %v", name, err)
			}
		}
		if _, err := t1.DeleteTechnicianKey(ctx1, &desksidev1.DeleteTechnicianKeyRequest{Technician: "t2", Fingerprint: envelope.Fingerprint(pub2)}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("tier1 deletes another's key: %v", err)
		}
		// Not even a tier2 may publish a certificate, however well signed.
		cert := certFor(t, org, "t2", pub2)
		_, err = t2.PublishCertificate(ctx2, &desksidev1.PublishCertificateRequest{Certificate: cert})
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "needs role admin") {
			t.Errorf("tier2 publishes a certificate: %v", err)
		}
		auditHas(t, r, "t1", "access.denied", "t2")
		if keys, _ := admin.ListTechnicianKeys(actx, &desksidev1.ListTechnicianKeysRequest{Technician: "t2"}); keys.GetKeys()[0].GetCertificate() != nil {
			t.Error("a refused certificate was stored")
		}
	})

	t.Run("admin certifies", func(t *testing.T) {
		all, err := admin.ListTechnicianKeys(actx, &desksidev1.ListTechnicianKeysRequest{All: true})
		if err != nil || len(all.GetKeys()) != 2 {
			t.Fatalf("all keys: %v %v", all, err)
		}
		res, err := admin.PublishCertificate(actx, &desksidev1.PublishCertificateRequest{Certificate: certFor(t, org, "t1", pub1)})
		if err != nil || res.GetKey().GetCertificate() == nil {
			t.Fatalf("publish: %v %v", res, err)
		}
		ev := auditHas(t, r, "admin", "technician.key.certify", "t1")
		if !strings.Contains(ev.Detail, envelope.Fingerprint(pub1)) || !strings.Contains(ev.Detail, "tier2") {
			t.Errorf("audit detail %q", ev.Detail)
		}
		own, _ := t1.ListTechnicianKeys(ctx1, &desksidev1.ListTechnicianKeysRequest{})
		if !proto.Equal(own.GetKeys()[0].GetCertificate(), res.GetKey().GetCertificate()) {
			t.Error("the technician does not see their certificate")
		}
		if _, err := admin.PublishCertificate(actx, &desksidev1.PublishCertificateRequest{Certificate: certFor(t, org, "nobody", pub1)}); status.Code(err) != codes.NotFound {
			t.Errorf("certificate for an unknown technician: %v", err)
		}
	})

	t.Run("certificates of another organisation key than the relay's chain are refused", func(t *testing.T) {
		stmt, err := envelope.SignOrgKey(org, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := proto.Marshal(&desksidev1.OrgKeyUpdate{Statements: []*desksidev1.OrgKeyStatement{stmt}})
		if err := r.Srv.Store().PutRelaySetting(context.Background(), "org.keys", raw); err != nil {
			t.Fatal(err)
		}
		defer r.Srv.Store().PutRelaySetting(context.Background(), "org.keys", nil)
		_, otherOrg, _ := ed25519.GenerateKey(rand.Reader)
		_, err = admin.PublishCertificate(actx, &desksidev1.PublishCertificateRequest{Certificate: certFor(t, otherOrg, "t2", pub2)})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), envelope.Fingerprint(orgPub)) {
			t.Errorf("certificate of another organisation key: %v", err)
		}
		if _, err := admin.PublishCertificate(actx, &desksidev1.PublishCertificateRequest{Certificate: certFor(t, org, "t2", pub2)}); err != nil {
			t.Errorf("certificate of the chain's key: %v", err)
		}
		// A hand-over makes the new key the only one accepted.
		nextPub, next, _ := ed25519.GenerateKey(rand.Reader)
		hand, err := envelope.SignOrgKey(org, nextPub, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		raw, _ = proto.Marshal(&desksidev1.OrgKeyUpdate{Statements: []*desksidev1.OrgKeyStatement{stmt, hand}})
		if err := r.Srv.Store().PutRelaySetting(context.Background(), "org.keys", raw); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.PublishCertificate(actx, &desksidev1.PublishCertificateRequest{Certificate: certFor(t, org, "t2", pub2)}); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("certificate of the handed-over key: %v", err)
		}
		if _, err := admin.PublishCertificate(actx, &desksidev1.PublishCertificateRequest{Certificate: certFor(t, next, "t2", pub2)}); err != nil {
			t.Errorf("certificate of the current key: %v", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if _, err := admin.DeleteTechnicianKey(actx, &desksidev1.DeleteTechnicianKeyRequest{Technician: "t2", Fingerprint: envelope.Fingerprint(pub2)}); err != nil {
			t.Fatal(err)
		}
		auditHas(t, r, "admin", "technician.key.delete", "t2")
		if _, err := t1.DeleteTechnicianKey(ctx1, &desksidev1.DeleteTechnicianKeyRequest{Fingerprint: envelope.Fingerprint(pub1)}); err != nil {
			t.Fatal(err)
		}
		if all, _ := admin.ListTechnicianKeys(actx, &desksidev1.ListTechnicianKeysRequest{All: true}); len(all.GetKeys()) != 0 {
			t.Errorf("keys left: %v", all)
		}
		if _, err := t1.DeleteTechnicianKey(ctx1, &desksidev1.DeleteTechnicianKeyRequest{Fingerprint: envelope.Fingerprint(pub1)}); status.Code(err) != codes.NotFound {
			t.Errorf("deleting a deleted key: %v", err)
		}
	})
}

func certFor(t *testing.T, org ed25519.PrivateKey, name string, pub ed25519.PublicKey) *desksidev1.TechnicianCertificate {
	t.Helper()
	c, err := envelope.Certify(org, &desksidev1.TechnicianCertificateBody{Technician: name, PublicKey: pub,
		Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2, NotAfter: timestamppb.New(time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
