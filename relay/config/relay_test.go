package config_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deskside/deskside/console/web"
	"github.com/deskside/deskside/relay/config"
	"github.com/deskside/deskside/relay/notify/mailtest"
	"github.com/deskside/deskside/relay/service"
)

// TestRelayFromFile starts a real relay (SQLite in a temporary data
// directory, the built-in TURN server) configured by a file alone, and
// checks that it listens where the file says and took the first
// technician's name and password from it.
func TestRelayFromFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "admin-password")
	if err := os.WriteFile(pw, []byte("a long admin password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := func() string { return fmt.Sprint(mailtest.FreePort(t)) }
	grpcAddr, webAddr, adminAddr, mailAddr := "127.0.0.1:"+port(), "127.0.0.1:"+port(), "127.0.0.1:"+port(), "127.0.0.1:"+port()
	f := writeFile(t, fmt.Sprintf(`# a relay's whole configuration
data: %q
listen: %q
web_listen: %q
admin_listen: %q
mail_listen: %q
turn_listen: "127.0.0.1:0"
names: [relay.example.org]
admin_name: root-tech
admin_password_file: %q
log_format: text
`, filepath.Join(dir, "data"), grpcAddr, webAddr, adminAddr, mailAddr, pw))

	c, err := config.Load(config.Options{Args: []string{"--config", f}, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.Service()
	cfg.WebFiles = web.Files()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	var banner strings.Builder
	cfg.Stdout = &banner
	srv, err := service.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	if got := srv.Addr().String(); got != grpcAddr {
		t.Errorf("gRPC on %s, the file says %s", got, grpcAddr)
	}
	if a := srv.WebAddr(); a == nil || a.String() != webAddr {
		t.Errorf("web console on %v, the file says %s", a, webAddr)
	}
	if a := srv.AdminAddr(); a == nil || a.String() != adminAddr {
		t.Errorf("admin on %v, the file says %s", a, adminAddr)
	}
	if got := srv.MailAddr(); got != mailAddr {
		t.Errorf("mail on %q, the file says %s", got, mailAddr)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", service.SQLiteFile)); err != nil {
		t.Errorf("database not in the file's data directory: %v", err)
	}
	if !strings.Contains(banner.String(), `"root-tech"`) || !strings.Contains(banner.String(), "password from configuration") {
		t.Errorf("first technician banner %q, want root-tech with the password from the file", banner.String())
	}

	done := make(chan error, 1)
	go func() { done <- srv.Run(t.Context()) }()
	// The gRPC listener answers TLS for the file's name, under the relay's CA.
	roots := x509.NewCertPool()
	roots.AddCert(srv.CA().CA())
	conn, err := tls.Dial("tcp", grpcAddr, &tls.Config{ServerName: "relay.example.org", RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatalf("TLS to the file's listen address as relay.example.org: %v", err)
	}
	conn.Close()
	res, err := http.Get("http://" + adminAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("/healthz on the file's admin address: %s", res.Status)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	<-done
}
