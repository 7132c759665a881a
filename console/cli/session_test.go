package cli_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/deskside/deskside/relay/pki"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
)

func TestSessionStartPrintsViewerURL(t *testing.T) {
	sr := servertest.Start(t, servertest.Options{WebFiles: fstest.MapFS{"index.html": {Data: []byte("<!doctype html>")}}})
	r := &relay{srv: sr.Srv, addr: sr.Addr, caPath: filepath.Join(sr.Dir, pki.CAFile), outputs: new(bytes.Buffer)}
	if err := sr.Srv.Store().CreateDevice(context.Background(), store.Device{ID: "dev-view", Hostname: "viewer-host", FirstSeen: time.Now()}); err != nil {
		t.Fatal(err)
	}
	c := r.cli(t)
	c.login("admin", servertest.AdminPassword)
	res := c.must("session", "start", "dev-view")
	u := strings.TrimSpace(res.stdout)
	if !strings.HasPrefix(u, "https://127.0.0.1:") || !strings.HasSuffix(u, "/#/devices/dev-view/session?control=1") {
		t.Fatalf("URL %q", u)
	}
	if !strings.Contains(res.stderr, "consent") || !strings.Contains(res.stderr, "offline") {
		t.Errorf("notes missing: %q", res.stderr)
	}
	res = c.must("session", "start", "dev-view", "--view", "--ticket", "DS-7K3Q")
	if !strings.HasSuffix(strings.TrimSpace(res.stdout), "control=0&ticket=DS-7K3Q") {
		t.Errorf("view-only URL %q", res.stdout)
	}
	c.fails(1, "no device", "session", "start", "dev-nope")
}
