package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/deskside/deskside/relay/pki"
	"github.com/deskside/deskside/relay/server/servertest"
)

// TestLoginWebPort points login at the relay's web console port: the CLI
// must say so and name the gRPC port to use.
func TestLoginWebPort(t *testing.T) {
	sr := servertest.Start(t, servertest.Options{WebFiles: fstest.MapFS{"index.html": {Data: []byte("<!doctype html>")}}})
	r := &relay{srv: sr.Srv, addr: sr.Addr, caPath: filepath.Join(sr.Dir, pki.CAFile), outputs: new(bytes.Buffer)}
	web := sr.Srv.WebAddr().String()
	c := r.cli(t)
	c.stdin = servertest.AdminPassword + "\n"
	res := c.run("login", "--relay", web, "--ca", r.caPath, "--password-stdin")
	want := web + " is the relay's web console port (HTTPS, for browsers), not the port the CLI uses: " +
		"sign in with `deskside login --relay 127.0.0.1:7443`"
	if res.code != 1 || !strings.Contains(res.stderr, want) {
		t.Errorf("login at the web port: want %q, got %s", want, res)
	}
	// A session saved with the web port gets the same advice on every call.
	c.login("admin", servertest.AdminPassword)
	cfg, err := os.ReadFile(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.cfg, bytes.ReplaceAll(cfg, []byte(r.addr), []byte(web)), 0o600); err != nil {
		t.Fatal(err)
	}
	c.fails(1, "is the relay's web console port", "devices", "list")
}
