package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/agent/command"
	"github.com/deskside/deskside/agent/orgtrust"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/server/servertest"
)

// webCommand runs a command through the web console's API as the browser
// does (Connect, JSON, server stream), with the envelope header when env
// is set, and returns the exit event.
func (w *webClient) webCommand(t *testing.T, dev, line string, env *desksidev1.SignedEnvelope) map[string]any {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"deviceId": dev, "command": map[string]any{"command": line}})
	body := make([]byte, 5, 5+len(req))
	binary.BigEndian.PutUint32(body[1:], uint32(len(req)))
	body = append(body, req...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.base+"/deskside.v1.ConsoleService/RunCommand", bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/connect+json")
	hr.Header.Set("Origin", w.origin)
	if env != nil {
		raw, _ := proto.Marshal(&desksidev1.EnvelopeCall{Envelope: env})
		// As @connectrpc/connect's encodeBinaryHeader: base64 without padding.
		hr.Header.Set(envelope.MetadataKey, base64.RawStdEncoding.EncodeToString(raw))
	}
	resp, err := w.http.Do(hr)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("RunCommand: %v %v", resp, err)
	}
	defer resp.Body.Close()
	events := make(chan map[string]any, 16)
	go readConnectStream(t, resp.Body, events)
	var exit map[string]any
	for m := range events {
		if e, ok := m["exit"].(map[string]any); ok {
			exit = e
		}
		if m["__end"] != nil && m["error"] != nil {
			t.Fatalf("RunCommand ended with %v", m["error"])
		}
	}
	if exit == nil {
		t.Fatal("RunCommand: no exit event")
	}
	return exit
}

// TestWebEnvelopeHeaderAndOrgService checks what the browser's signing
// needs from the web layer: OrgService answers there behind the same
// cookie and origin checks, and an envelope sent as the Connect binary
// header deskside-envelope-bin reaches the agent intact (it verifies the
// signature over the bytes it gets), so a pinning agent runs the signed
// command and refuses the unsigned one.
func TestWebEnvelopeHeaderAndOrgService(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	w := r.web(t)
	if code, body, _ := w.callService("OrgService", "GetRevocations", map[string]any{}); code != http.StatusUnauthorized {
		t.Fatalf("OrgService without a session: %d %v, want 401", code, body)
	}
	if code, _, _ := w.call("Login", map[string]any{"name": "admin", "password": adminPassword}); code != http.StatusOK {
		t.Fatal("login")
	}
	if code, body, _ := w.callService("OrgService", "GetRevocations", map[string]any{}); code != http.StatusOK {
		t.Fatalf("OrgService through the web: %d %v", code, body)
	}
	w.origin = "https://evil.example"
	if code, _, _ := w.callService("OrgService", "ListTechnicianKeys", map[string]any{}); code != http.StatusForbidden {
		t.Fatalf("cross-origin OrgService call: %d, want 403", code)
	}
	w.origin = w.base

	st := r.mustEnroll(t)
	orgPub, org, _ := ed25519.GenerateKey(rand.Reader)
	if err := orgtrust.Pin(st.Dir, envelope.Fingerprint(orgPub)); err != nil {
		t.Fatal(err)
	}
	log := servertest.DiscardLogger()
	guard, err := orgtrust.Open(st.Dir, st.DeviceID, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: &fakeInventory{inv: sampleInventory()}, Health: fakeSampler{}, Hostname: "web-env",
		Commands: command.New(command.Options{Logger: log}), Guard: guard,
	})
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !a.Link.Connected() {
			return errNotYet
		}
		return nil
	})
	tech := newTech(t, org, "admin", desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2)
	dir := t.TempDir()
	unsigned, signed := filepath.Join(dir, "unsigned"), filepath.Join(dir, "signed")

	ex := w.webCommand(t, st.DeviceID, "touch "+unsigned, nil)
	if msg, _ := ex["error"].(string); !strings.Contains(msg, "signed envelope") {
		t.Errorf("unsigned command to a pinning device: exit %v, want the envelope refusal", ex)
	}
	if _, err := os.Stat(unsigned); err == nil {
		t.Error("the unsigned command ran")
	}
	rc := &desksidev1.RunCommand{Command: "touch " + signed}
	ex = w.webCommand(t, st.DeviceID, rc.Command, tech.seal(t, rc, []string{st.DeviceID}, time.Now()))
	if msg, _ := ex["error"].(string); msg != "" {
		t.Fatalf("signed command through the web: exit %v", ex)
	}
	if _, err := os.Stat(signed); err != nil {
		t.Errorf("the signed command did not run: %v", err)
	}
}
