package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/deskside/deskside/agent/enroll"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/server"
)

func TestEnrollAndConnect(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	st := r.mustEnroll(t)
	if !strings.HasPrefix(st.DeviceID, "dev-") {
		t.Errorf("device id %q", st.DeviceID)
	}
	for _, f := range []string{"device-key.pem", "agent.json"} {
		fi, err := os.Stat(filepath.Join(st.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	// The identity reloads from disk and connects.
	loaded, err := enroll.Load(st.Dir)
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, loaded, agentOpts{})
	cs, ctx := r.admin(t)
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
		if err != nil {
			return err
		}
		if !d.GetDevice().GetOnline() || d.GetInventory() == nil {
			return errNotYet
		}
		return nil
	})
	// Enrollment is audited.
	ev, err := cs.ListAuditEvents(ctx, &desksidev1.ListAuditEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range ev.GetEvents() {
		found = found || (e.GetAction() == "device.enroll" && e.GetTarget() == st.DeviceID)
	}
	if !found {
		t.Error("no device.enroll audit event")
	}
}

func TestEnrollRefusals(t *testing.T) {
	var clk clock
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", func(c *server.Config) { c.Now = clk.Now })

	used := r.token(t, time.Hour, 1)
	if _, err := r.enroll(t, used); err != nil {
		t.Fatalf("first use: %v", err)
	}
	expired := r.token(t, time.Minute, 1)
	clk.Advance(2 * time.Minute)
	unknown := wire.NewToken(r.srv.CA().Pin()).String()
	otherPin := wire.NewToken(wire.NewToken("").Secret) // a pin that is not this relay's CA
	otherPin.Pin = otherPin.Secret
	twice := r.token(t, time.Hour, 2)
	for i := 0; i < 2; i++ {
		if _, err := r.enroll(t, twice); err != nil {
			t.Fatalf("multi-use token use %d: %v", i+1, err)
		}
	}

	for _, tc := range []struct {
		name, token, want string
	}{
		{"reused", used, "already been used"},
		{"used up", twice, "already been used"},
		{"expired", expired, "expired"},
		{"unknown", unknown, "unknown"},
		{"malformed", "not-a-token", "malformed enrollment token"},
		{"wrong CA pin", otherPin.String(), "does not match the enrollment token's pin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.enroll(t, tc.token)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("enroll with %s token: got %v, want error containing %q", tc.name, err, tc.want)
			}
		})
	}
}

// selfSigned makes a client certificate from a CA the relay never saw.
func selfSigned(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rogue CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}
}

// connectOnce opens a Connect stream and returns the first error (or nil
// when the relay answered Hello with Welcome).
func connectOnce(t *testing.T, r *relay, cert *tls.Certificate, version uint32) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := desksidev1.NewAgentServiceClient(r.dial(t, cert)).Connect(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(&desksidev1.AgentMessage{Id: 1, Body: &desksidev1.AgentMessage_Hello{Hello: &desksidev1.Hello{
		ProtocolVersion: version, Hostname: "h", AgentVersion: "test",
	}}}); err != nil {
		_, err = st.Recv()
		return err
	}
	m, err := st.Recv()
	if err != nil {
		return err
	}
	if m.GetWelcome() == nil {
		t.Fatalf("first message %T, want Welcome", m.GetBody())
	}
	return nil
}

func TestConnectRefusals(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	st := r.mustEnroll(t)
	revoked := r.mustEnroll(t)
	cs, ctx := r.admin(t)
	if _, err := cs.RevokeDevice(ctx, &desksidev1.RevokeDeviceRequest{Id: revoked.DeviceID}); err != nil {
		t.Fatal(err)
	}
	if err := connectOnce(t, r, &st.Cert, wire.ProtocolVersion); err != nil {
		t.Fatalf("enrolled device refused: %v", err)
	}
	rogue := selfSigned(t, st.DeviceID) // same device id, wrong CA

	for _, tc := range []struct {
		name    string
		cert    *tls.Certificate
		version uint32
		code    codes.Code
		want    string
	}{
		{"no client certificate", nil, wire.ProtocolVersion, codes.Unauthenticated, "device certificate is required"},
		{"certificate from another CA", &rogue, wire.ProtocolVersion, codes.Unavailable, "certificate"},
		{"revoked device", &revoked.Cert, wire.ProtocolVersion, codes.PermissionDenied, "revoked"},
		{"protocol version mismatch", &st.Cert, wire.ProtocolVersion + 1, codes.FailedPrecondition, "protocol version mismatch: agent speaks 2, relay speaks 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := connectOnce(t, r, tc.cert, tc.version)
			if tc.cert == &rogue && status.Code(err) == codes.Unavailable {
				// TLS 1.3: the client may learn of the refused certificate
				// as the alert, or as the closed connection that follows it.
				return
			}
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Fatalf("got %v, want code %s with %q", err, tc.code, tc.want)
			}
		})
	}
}

func TestTLS12Refused(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	st := r.mustEnroll(t)
	conn, err := tls.Dial("tcp", r.addr, &tls.Config{
		MaxVersion: tls.VersionTLS12, RootCAs: r.caPool(), ServerName: "127.0.0.1",
		Certificates: []tls.Certificate{st.Cert}, NextProtos: []string{"h2"},
	})
	if err == nil {
		conn.Close()
		t.Fatal("TLS 1.2 handshake succeeded")
	}
	if !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("TLS 1.2 refused with %v, want a protocol version alert", err)
	}
	// The same client with TLS 1.3 works, so it was the version.
	conn, err = tls.Dial("tcp", r.addr, &tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: r.caPool(), ServerName: "127.0.0.1",
		Certificates: []tls.Certificate{st.Cert}, NextProtos: []string{"h2"},
	})
	if err != nil {
		t.Fatalf("TLS 1.3: %v", err)
	}
	conn.Close()
}

func TestRevokeDisconnectsLiveAgent(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	st := r.mustEnroll(t)
	a := runAgent(t, st, agentOpts{})
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !a.link.Connected() {
			return errNotYet
		}
		return nil
	})
	cs, ctx := r.admin(t)
	if _, err := cs.RevokeDevice(ctx, &desksidev1.RevokeDeviceRequest{Id: st.DeviceID}); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
		if err != nil {
			return err
		}
		if d.GetDevice().GetOnline() || !d.GetDevice().GetRevoked() {
			return errNotYet
		}
		return nil
	})
	// Stays out across reconnect attempts.
	time.Sleep(300 * time.Millisecond)
	if a.link.Connected() {
		t.Fatal("revoked agent reconnected")
	}
	if err := connectOnce(t, r, &st.Cert, wire.ProtocolVersion); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("revoked device connect: %v", err)
	}
}
