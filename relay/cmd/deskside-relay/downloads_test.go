package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDownloadsCommand adds packages with `deskside-relay downloads add`
// into the directory relay.yaml names (and one given with --dir), and
// lists them.
func TestDownloadsCommand(t *testing.T) {
	src, data := t.TempDir(), t.TempDir()
	for _, n := range []string{"deskside-agent_1.0_amd64.deb", "deskside-relay_1.0_amd64.deb"} {
		if err := os.WriteFile(filepath.Join(src, n), []byte(n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(t.TempDir(), "relay.yaml")
	if err := os.WriteFile(cfg, []byte("data: "+data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	var out, errb bytes.Buffer
	code := downloadsCommand([]string{"add", "--config", cfg, filepath.Join(src, "deskside-agent_1.0_amd64.deb"), filepath.Join(src, "deskside-relay_1.0_amd64.deb")}, noEnv, &out, &errb)
	if code != 0 {
		t.Fatalf("downloads add: %d\n%s%s", code, out.String(), errb.String())
	}
	dir := filepath.Join(data, "downloads")
	if fi, err := os.Stat(filepath.Join(dir, "deskside-agent_1.0_amd64.deb")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("added package: %v", err)
	}
	if !strings.Contains(errb.String(), "skipped "+filepath.Join(src, "deskside-relay_1.0_amd64.deb")) {
		t.Errorf("the relay's package was not reported skipped: %s", errb.String())
	}
	out.Reset()
	if code := downloadsCommand([]string{"list", "--dir", dir}, noEnv, &out, &errb); code != 0 || !strings.Contains(out.String(), "deskside-agent_1.0_amd64.deb") || !strings.Contains(out.String(), "SHA256SUMS") {
		t.Errorf("downloads list: %d\n%s", code, out.String())
	}
	out.Reset()
	if code := downloadsCommand([]string{"list", "--dir", t.TempDir()}, noEnv, &out, &errb); code != 0 || !strings.Contains(out.String(), "make packages") {
		t.Errorf("downloads list of an empty directory: %d\n%s", code, out.String())
	}
	errb.Reset()
	if code := downloadsCommand([]string{"add", "--dir", dir, filepath.Join(src, "deskside-relay_1.0_amd64.deb")}, noEnv, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no agent package") {
		t.Errorf("downloads add of no package: %d\n%s", code, errb.String())
	}
}
