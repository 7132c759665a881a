package service_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/service"
	"github.com/deskside/deskside/relay/store/postgres"
	"github.com/deskside/deskside/relay/store/sqlite"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestDatabaseConfig checks that a Database that is not a PostgreSQL URL is
// refused, naming the value but not its password.
func TestDatabaseConfig(t *testing.T) {
	for _, db := range []string{"mysql://bob:hunter2@db/deskside", "/var/lib/deskside/deskside.db", "host=db password=hunter2"} {
		_, err := service.New(context.Background(), service.Config{Database: db, TURNListen: "off", Config: server.Config{
			DataDir: t.TempDir(), WebListen: "off", AdminListen: "off",
			Logger: discard(),
		}})
		if err == nil {
			t.Fatalf("Database %q accepted", db)
		}
		if !strings.Contains(err.Error(), "Database") || !strings.Contains(err.Error(), postgres.Redact(db)) ||
			strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Database %q: error %q should name the field and the value, without its password", db, err)
		}
	}
}

// TestDefaultBackends starts a relay on the default backends (SQLite in
// the data directory, the built-in TURN server, the local bus): Close
// closes the store it opened.
func TestDefaultBackends(t *testing.T) {
	srv, err := service.New(t.Context(), service.Config{TURNListen: "127.0.0.1:0", Config: server.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", WebListen: "off", AdminListen: "off",
		Stdout: io.Discard, Logger: discard(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	st := srv.Store()
	if _, ok := st.(*sqlite.Store); !ok {
		t.Errorf("default store is a %T, want SQLite", st)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := st.CountTechnicians(t.Context()); err == nil {
		t.Error("the store the relay opened is still open after Close")
	}
}

// TestGivenStoreStaysOpen: a store the caller passes in is the caller's
// to close, and a Release the caller set still runs.
func TestGivenStoreStaysOpen(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "own.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	released := false
	srv, err := service.New(t.Context(), service.Config{TURNListen: "off", Config: server.Config{
		DataDir: dir, Listen: "127.0.0.1:0", WebListen: "off", AdminListen: "off", Store: st,
		Release: func() error { released = true; return nil },
		Stdout:  io.Discard, Logger: discard(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if !released {
		t.Error("the caller's Release did not run")
	}
	if n, err := st.CountTechnicians(t.Context()); err != nil || n != 1 {
		t.Errorf("given store after Close: %d technicians, %v; want it open with the first admin", n, err)
	}
}

// TestTURNAllowConfig: peer ranges the built-in TURN server may reach are
// CIDR ranges or IPs; anything else, or a range with an external TURN
// server (whose peer rules are its own), is refused naming the flag.
func TestTURNAllowConfig(t *testing.T) {
	base := func() service.Config {
		return service.Config{Config: server.Config{DataDir: t.TempDir(), WebListen: "off", AdminListen: "off", Logger: discard()}}
	}
	c := base()
	c.TURNAllow = []string{"10.0.0.0/8", "192.168.1.7", " fd00::/8 "}
	if err := c.CheckAndSetDefaults(); err != nil {
		t.Errorf("valid ranges refused: %v", err)
	}
	for name, mod := range map[string]func(*service.Config){
		"not a range": func(c *service.Config) { c.TURNAllow = []string{"10.0.0.0/33"} },
		"hostname":    func(c *service.Config) { c.TURNAllow = []string{"lan.example"} },
		"external": func(c *service.Config) {
			c.TURNAllow, c.TURNExternalURLs, c.TURNSecret = []string{"10.0.0.0/8"}, []string{"turn:turn.example:3478"}, "s"
		},
	} {
		c := base()
		mod(&c)
		if err := c.CheckAndSetDefaults(); err == nil || !strings.Contains(err.Error(), "--turn-allow") {
			t.Errorf("%s: %v, want an error naming --turn-allow", name, err)
		}
	}
}
