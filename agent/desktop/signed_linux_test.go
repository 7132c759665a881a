package desktop_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/desktop"
	"github.com/deskside/deskside/agent/desktop/internal/testclient"
	"github.com/deskside/deskside/agent/desktop/internal/viewertest"
	"github.com/deskside/deskside/agent/desktop/internal/xvfb"
	"github.com/deskside/deskside/agent/orgtrust"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/server/servertest"
)

// syncBuffer is a log destination the test reads while the agent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// otherFingerprint is the fingerprint of a fresh DTLS certificate: the
// technician's real viewer, when a relay answers in its place.
func otherFingerprint(t *testing.T) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, err := webrtc.GenerateCertificate(k)
	if err != nil {
		t.Fatal(err)
	}
	fps, err := c.GetFingerprints()
	if err != nil {
		t.Fatal(err)
	}
	return fps[0].Algorithm + " " + fps[0].Value
}

// TestSignedDesktopBindsViewer runs a real relay and a real agent that
// pins an organisation key, with real pion peers on both ends: a signed
// session completes only with the viewer whose DTLS fingerprint the
// technician signed. A relay that answers the agent's offer with a peer
// of its own (another certificate) gets no media, whether its answer
// names its own fingerprint (the agent refuses the answer) or copies the
// signed one (pion refuses the DTLS handshake).
func TestSignedDesktopBindsViewer(t *testing.T) {
	xs := xvfb.StartWith(t, xvfb.Config{Width: 640, Height: 480})
	tc, err := testclient.Start(xs.Display)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	r := servertest.Start(t, servertest.Options{})
	st := r.Enroll(t, "desk")
	orgPub, org, _ := ed25519.GenerateKey(rand.Reader)
	if err := orgtrust.Pin(st.Dir, envelope.Fingerprint(orgPub)); err != nil {
		t.Fatal(err)
	}
	agentLog := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(agentLog, nil))
	guard, err := orgtrust.Open(st.Dir, st.DeviceID, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	mgr := desktop.NewManager(desktop.Options{Display: xs.Display, Logger: log})
	servertest.RunAgent(t, st, servertest.AgentOptions{Inventory: staticInventory{}, Health: staticHealth{}, Desktop: mgr, Guard: guard})
	cs, ctx := r.Admin(t)
	servertest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
		if err != nil || !d.GetDevice().GetOnline() {
			return fmt.Errorf("agent not online")
		}
		return nil
	})
	if _, err := cs.SetDevicePolicy(ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: st.DeviceID, UnattendedAllowed: true}); err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	// Tier 3: the device is unattended, which a lower certificate's
	// sessions do not skip the prompt for (consent_linux_test.go).
	cert, err := envelope.Certify(org, &desksidev1.TechnicianCertificateBody{Technician: "alice", PublicKey: pub,
		Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER3, NotAfter: timestamppb.New(time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	// sign seals the operation as the technician's console does; edit
	// changes what is signed (nil: what the request asks for).
	sign := func(edit func(*desksidev1.DesktopOperation)) func(context.Context, *desksidev1.DesktopOperation) (context.Context, error) {
		return func(ctx context.Context, op *desksidev1.DesktopOperation) (context.Context, error) {
			if edit != nil {
				op = proto.Clone(op).(*desksidev1.DesktopOperation)
				edit(op)
			}
			env, err := envelope.Seal(key, cert, op, []string{st.DeviceID}, time.Now())
			if err != nil {
				return nil, err
			}
			return envelope.WithCall(ctx, env, []string{st.DeviceID})
		}
	}
	open := func(t *testing.T, o viewertest.Options) *viewertest.Viewer {
		t.Helper()
		o.Quiet = true
		v, err := viewertest.Open(t, cs, ctx, st.DeviceID, o)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	endedWith := func(t *testing.T, v *viewertest.Viewer, want string) {
		t.Helper()
		select {
		case reason := <-v.Ended:
			if !strings.Contains(reason, want) {
				t.Errorf("session ended with %q, want a reason naming %q", reason, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("session did not end (want %q)", want)
		}
	}
	idle := func(t *testing.T) {
		t.Helper()
		servertest.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
			if n := mgr.Sessions(); n != 0 {
				return fmt.Errorf("%d session(s) still running on the agent", n)
			}
			return nil
		})
	}
	noMedia := func(t *testing.T, v *viewertest.Viewer) {
		t.Helper()
		if f, err := v.Frame(3 * time.Second); err == nil {
			t.Fatalf("a frame (%dx%d) reached a viewer the technician did not sign for", f.Width, f.Height)
		}
		if s := v.Stats(); s.Packets != 0 || s.Decoded != 0 {
			t.Errorf("media reached a viewer the technician did not sign for: %+v", s)
		}
		if st := v.PC.ConnectionState(); st == webrtc.PeerConnectionStateConnected {
			t.Errorf("the impostor's peer connection is %s", st)
		}
	}

	t.Run("envelope signs another viewer than the request names", func(t *testing.T) {
		other := otherFingerprint(t)
		v := open(t, viewertest.Options{Sign: sign(func(op *desksidev1.DesktopOperation) { op.ViewerFingerprint = other })})
		endedWith(t, v, "refused by the device: the request differs from what technician \"alice\" signed")
		noMedia(t, v)
	})
	t.Run("pinned device, request without a fingerprint", func(t *testing.T) {
		v := open(t, viewertest.Options{NoFingerprint: true, Sign: sign(nil)})
		endedWith(t, v, "the viewer did not bind its DTLS certificate")
		noMedia(t, v)
		v = open(t, viewertest.Options{NoFingerprint: true})
		endedWith(t, v, "only with a technician's signed envelope")
	})
	t.Run("relay in the middle answers with its own certificate", func(t *testing.T) {
		// The technician's viewer (certificate F1) signed; the relay keeps
		// the request and envelope as they are and answers the agent's
		// offer with a pion peer of its own.
		v := open(t, viewertest.Options{Sign: sign(nil), ClaimFingerprint: otherFingerprint(t)})
		select {
		case err := <-v.SignalErrors:
			if !strings.Contains(err.Error(), "answered in the viewer's place") {
				t.Errorf("answer refused with %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the impostor's answer was not refused")
		}
		endedWith(t, v, "answered in the viewer's place")
		noMedia(t, v)
		idle(t)
		if !strings.Contains(agentLog.String(), "desktop answer refused") {
			t.Errorf("the agent did not log the refused answer:\n%s", agentLog)
		}
	})
	t.Run("relay in the middle copies the signed fingerprint", func(t *testing.T) {
		// The answer names the signed fingerprint, but the impostor's
		// DTLS certificate is its own: the handshake fails.
		signed := otherFingerprint(t)
		fpLine := regexp.MustCompile(`a=fingerprint:[^\r\n]*`)
		v := open(t, viewertest.Options{Sign: sign(nil), ClaimFingerprint: signed,
			EditAnswer: func(sdp string) string { return fpLine.ReplaceAllString(sdp, "a=fingerprint:"+signed) }})
		// The check means something only once the copied answer is sent:
		// on a loaded machine the agent's offer can take seconds.
		servertest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
			if v.Answered.Load() == 0 {
				return fmt.Errorf("the viewer has not answered an offer yet")
			}
			return nil
		})
		time.Sleep(2 * time.Second) // ICE and the DTLS handshake get their chance
		noMedia(t, v)
		// The agent may end the session once DTLS fails, refusing later
		// candidates; only a refusal of the answer would miss the point.
		for len(v.SignalErrors) > 0 {
			if err := <-v.SignalErrors; strings.Contains(err.Error(), "fingerprint") {
				t.Errorf("the agent refused the copied answer itself (%v); the test wants pion's DTLS check", err)
			}
		}
		v.Close()
		idle(t)
	})
	t.Run("signed session with the viewer's own fingerprint", func(t *testing.T) {
		v := open(t, viewertest.Options{Sign: sign(nil)})
		f, err := v.Frame(20 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		want := testclient.DefaultQuadrants[0]
		if r, g, b := f.RGB(f.Width/4, f.Height/4); !near(r, want.R) || !near(g, want.G) || !near(b, want.B) {
			t.Errorf("first quadrant %d,%d,%d, want %v", r, g, b, want)
		}
		v.Close()
		idle(t)
	})
}
