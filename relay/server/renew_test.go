package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/internal/pemfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/pki"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/store"
)

// agentCert reads the device certificate the agent has on disk.
func agentCert(t *testing.T, st *enroll.State) *x509.Certificate {
	t.Helper()
	c, err := pemfile.ReadCertificate(filepath.Join(st.Dir, "device.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// restart stops r and starts a relay on the same data directory and
// address (agents reconnect to it).
func restart(t *testing.T, r *relay, mod func(*server.Config)) *relay {
	t.Helper()
	r.stop()
	return startRelay(t, r.dir, r.addr, mod)
}

// auditHas reports whether the audit log has action on target.
func auditRecorded(t *testing.T, r *relay, action, target string) bool {
	t.Helper()
	evs, err := r.srv.Store().ListAudit(context.Background(), store.AuditFilter{Action: action, Target: target, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Action == action && e.Target == target {
			return true
		}
	}
	return false
}

// TestCertRenewalKeepsAgentConnected enrolls with a short-lived device
// certificate, so renewal is due at once: the agent renews it on its
// stream, reconnects with the new one, which the relay confirms; from then
// on the old certificate is refused.
func TestCertRenewalKeepsAgentConnected(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", func(c *server.Config) { c.DeviceCertValidity = 2 * time.Minute })
	st := r.mustEnroll(t)
	old := st.Cert
	if time.Now().Before(st.RenewAt()) {
		t.Fatalf("a %s certificate is not due for renewal (at %s)", old.Leaf.NotAfter.Sub(old.Leaf.NotBefore), st.RenewAt())
	}
	// Renewed certificates last a year: one renewal only.
	r = restart(t, r, nil)
	a := runAgent(t, st, agentOpts{})
	oldSerial := old.Leaf.SerialNumber.Text(16)
	checkFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		d, err := r.srv.Store().GetDevice(context.Background(), st.DeviceID)
		if err != nil {
			return err
		}
		if d.CertSerial == oldSerial || d.PendingSerial != "" {
			return fmt.Errorf("current serial %s, pending %q: %w", d.CertSerial, d.PendingSerial, errNotYet)
		}
		if cur := agentCert(t, st); cur.SerialNumber.Text(16) != d.CertSerial {
			return fmt.Errorf("agent holds %s, relay has %s current: %w", cur.SerialNumber.Text(16), d.CertSerial, errNotYet)
		}
		if !a.link.Connected() {
			return fmt.Errorf("agent not connected: %w", errNotYet)
		}
		return nil
	})
	renewed := agentCert(t, st)
	if renewed.Subject.CommonName != st.DeviceID || time.Until(renewed.NotAfter) < 300*24*time.Hour {
		t.Fatalf("renewed certificate %q until %s", renewed.Subject.CommonName, renewed.NotAfter)
	}
	if !auditRecorded(t, r, "device.cert_renewed", st.DeviceID) || !auditRecorded(t, r, "device.cert_renewal_issued", st.DeviceID) {
		t.Error("audit log lacks device.cert_renewal_issued and device.cert_renewed")
	}
	// The old certificate is still valid for a minute or more, but no
	// longer the device's.
	err := connectOnce(t, r, &old, wire.ProtocolVersion)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "no longer current") {
		t.Fatalf("old certificate after the switch: %v, want PermissionDenied", err)
	}
	// The agent, restarted from its state directory, connects with the new one.
	st2, err := enroll.Load(st.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := connectOnce(t, r, &st2.Cert, wire.ProtocolVersion); err != nil {
		t.Fatalf("renewed certificate from disk: %v", err)
	}
}

// renewOnStream opens a stream with cert and sends RenewCertificate with
// csr; it returns the relay's answer.
func renewOnStream(t *testing.T, r *relay, cert *tls.Certificate, csr []byte) *desksidev1.RelayMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := desksidev1.NewAgentServiceClient(r.dial(t, cert)).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&desksidev1.AgentMessage{Id: 1, Body: &desksidev1.AgentMessage_Hello{Hello: &desksidev1.Hello{
		ProtocolVersion: wire.ProtocolVersion, Hostname: "h", AgentVersion: "test"}}}); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(); err != nil || m.GetWelcome() == nil {
		t.Fatalf("no Welcome: %v", err)
	}
	if err := s.Send(&desksidev1.AgentMessage{Id: 2, Body: &desksidev1.AgentMessage_RenewCertificate{
		RenewCertificate: &desksidev1.RenewCertificate{CsrDer: csr}}}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("no answer to RenewCertificate: %v", err)
		}
		if m.GetRefId() == 2 {
			return m
		}
	}
}

// TestCertRenewalRefusals: a device cannot have a certificate signed for
// another device, nor keep its key, nor use another key type.
func TestCertRenewalRefusals(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	st := r.mustEnroll(t)
	victim := r.mustEnroll(t)
	csr := func(cn string, key any) []byte {
		b, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	fresh, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name, want string
		csr        []byte
	}{
		{"another device id", "names device", csr(victim.DeviceID, fresh)},
		{"same key", "reuses the current key", csr(st.DeviceID, st.Cert.PrivateKey)},
		{"other curve", "P-384", csr(st.DeviceID, p384)},
		{"garbage", "bad certificate signing request", []byte("not a CSR")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := renewOnStream(t, r, &st.Cert, tc.csr)
			a := m.GetAck()
			if a == nil || a.GetAccepted() || !strings.Contains(a.GetError().GetMessage(), tc.want) {
				t.Fatalf("answer %v, want a refusal saying %q", m, tc.want)
			}
		})
	}
	d, err := r.srv.Store().GetDevice(context.Background(), victim.DeviceID)
	if err != nil || d.PendingSerial != "" {
		t.Fatalf("victim device has pending serial %q (%v)", d.PendingSerial, err)
	}
	if !auditRecorded(t, r, "device.cert_renewal_refused", st.DeviceID) {
		t.Error("refused renewals are not audited")
	}
	// A good CSR is signed, and until the agent connects with the new
	// certificate the old one still works.
	m := renewOnStream(t, r, &st.Cert, csr(st.DeviceID, fresh))
	der := m.GetCertificateRenewed().GetCertificateDer()
	c, err := x509.ParseCertificate(der)
	if err != nil || c.Subject.CommonName != st.DeviceID {
		t.Fatalf("renewal answer %v (%v)", m, err)
	}
	if err := connectOnce(t, r, &st.Cert, wire.ProtocolVersion); err != nil {
		t.Fatalf("old certificate before the switch: %v", err)
	}
	renewed := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: fresh, Leaf: c}
	if err := connectOnce(t, r, &renewed, wire.ProtocolVersion); err != nil {
		t.Fatalf("renewed certificate: %v", err)
	}
	if err := connectOnce(t, r, &st.Cert, wire.ProtocolVersion); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("old certificate after the switch: %v, want PermissionDenied", err)
	}
}

// TestCARotationKeepsAgentConnected rotates the relay CA in its three
// steps while an agent runs: the agent pins the staged CA, reconnects
// after the relay's server certificate is signed by it, renews its device
// certificate under it, and stays connected after the old CA is retired.
func TestCARotationKeepsAgentConnected(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	st := r.mustEnroll(t)
	a := runAgent(t, st, agentOpts{})
	connected := func(what string) {
		t.Helper()
		checkFor(t, 20*time.Second, 20*time.Millisecond, func() error {
			if !a.link.Connected() {
				return fmt.Errorf("agent not connected %s: %w", what, errNotYet)
			}
			return nil
		})
	}
	connected("at first")
	oldCA := r.srv.CA().CA()

	next, err := pki.Stage(r.dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Stage(r.dir, time.Now()); err == nil {
		t.Fatal("a second Stage succeeded")
	}
	r = restart(t, r, nil)
	checkFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		b, err := os.ReadFile(filepath.Join(st.Dir, "ca.pem"))
		if err != nil {
			return err
		}
		if n := strings.Count(string(b), "BEGIN CERTIFICATE"); n != 2 {
			return fmt.Errorf("agent pins %d CAs: %w", n, errNotYet)
		}
		return nil
	})

	if err := pki.Activate(r.dir); err != nil {
		t.Fatal(err)
	}
	r = restart(t, r, nil)
	if !r.srv.CA().CA().Equal(next) || r.srv.CA().ServerCertificate().Leaf.CheckSignatureFrom(next) != nil {
		t.Fatal("after Activate the server certificate is not signed by the new CA")
	}
	// The agent reconnects and renews its certificate under the new CA.
	checkFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if c := agentCert(t, st); c.CheckSignatureFrom(next) != nil {
			return fmt.Errorf("agent certificate issued by %q: %w", c.Issuer.CommonName, errNotYet)
		}
		d, err := r.srv.Store().GetDevice(context.Background(), st.DeviceID)
		if err != nil {
			return err
		}
		if d.CertSerial != agentCert(t, st).SerialNumber.Text(16) {
			return fmt.Errorf("renewal not confirmed yet: %w", errNotYet)
		}
		return nil
	})
	connected("after activation")

	if prev, err := pki.Retire(r.dir); err != nil || len(prev) != 1 || !prev[0].Equal(oldCA) {
		t.Fatalf("Retire: %v %v", prev, err)
	}
	r = restart(t, r, nil)
	connected("after retiring the old CA")
	checkFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		cas, err := os.ReadFile(filepath.Join(st.Dir, "ca.pem"))
		if err != nil {
			return err
		}
		if n := strings.Count(string(cas), "BEGIN CERTIFICATE"); n != 1 {
			return fmt.Errorf("agent pins %d CAs: %w", n, errNotYet)
		}
		return nil
	})
}

// TestReflectionNeedsSignIn: gRPC reflection answers only signed-in
// technicians, and not at all with --reflection=off.
func TestReflectionNeedsSignIn(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	list := func(ctx context.Context, r *relay) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := reflectionpb.NewServerReflectionClient(r.dial(t, nil)).ServerReflectionInfo(ctx)
		if err != nil {
			return err
		}
		if err := s.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			_, err = s.Recv()
			return err
		}
		_, err = s.Recv()
		return err
	}
	if err := list(context.Background(), r); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("reflection without sign-in: %v, want Unauthenticated", err)
	}
	if err := list(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer forged"), r); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("reflection with a forged session: %v, want Unauthenticated", err)
	}
	_, ctx := r.admin(t)
	if err := list(ctx, r); err != nil {
		t.Fatalf("reflection for a signed-in technician: %v", err)
	}
	off := startRelay(t, t.TempDir(), "127.0.0.1:0", func(c *server.Config) { c.Reflection = server.ReflectionOff })
	_, ctx = off.admin(t)
	if err := list(ctx, off); status.Code(err) != codes.Unimplemented {
		t.Fatalf("reflection off: %v, want Unimplemented", err)
	}
}
