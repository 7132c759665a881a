package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deskside/deskside/relay/server/servertest"
)

// TestCommandsReadTheConfigFile: `ca status` and `backup` find the data
// directory in the relay's configuration file, as the relay does, and a
// --data flag given still wins.
func TestCommandsReadTheConfigFile(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	r.Enroll(t, "config-file-host")
	file := filepath.Join(t.TempDir(), "relay.yaml")
	if err := os.WriteFile(file, []byte("data: "+r.Dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	if rc := caCommand([]string{"status", "--config", file}, &stdout, &stderr); rc != 0 || !strings.Contains(stdout.String(), "active:") {
		t.Fatalf("ca status --config: exit %d: %s%s", rc, stdout.String(), stderr.String())
	}

	stdout.Reset()
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	if rc := backupCommand(t.Context(), []string{"--config", file, "--out", out}, &stdout, &stderr); rc != 0 || !strings.Contains(stdout.String(), "deskside.db") {
		t.Fatalf("backup --config: exit %d: %s%s", rc, stdout.String(), stderr.String())
	}

	stdout.Reset()
	stderr.Reset()
	other := filepath.Join(t.TempDir(), "not-a-relay")
	if rc := caCommand([]string{"status", "--config", file, "--data", other}, &stdout, &stderr); rc == 0 || !strings.Contains(stderr.String(), other) {
		t.Fatalf("--data did not win over the file: exit %d: %s%s", rc, stdout.String(), stderr.String())
	}

	stderr.Reset()
	if rc := caCommand([]string{"status", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, &stdout, &stderr); rc == 0 || !strings.Contains(stderr.String(), "config example") {
		t.Fatalf("a missing --config file: exit %d: %s", rc, stderr.String())
	}
}
