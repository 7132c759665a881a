package devrun

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenKeepsStateBetweenRuns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, err := Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if first.Reused || len(first.Password) < 12 || first.Addrs.Relay == "" || first.Addrs.Web == "" {
		t.Fatalf("first run: %+v", first)
	}
	fi, err := os.Stat(first.PasswordPath())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v, %v; want mode 0600", fi, err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %v, want 0700", fi.Mode().Perm())
	}
	// Something the relay and agent left behind.
	os.MkdirAll(first.RelayDir(), 0o700)
	os.WriteFile(filepath.Join(first.RelayDir(), "deskside.db"), []byte("x"), 0o600)

	second, err := Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Reused || second.Password != first.Password || second.Addrs != first.Addrs {
		t.Fatalf("second run: %+v, want the first run's password and addresses %+v", second, first)
	}
	if _, err := os.Stat(filepath.Join(second.RelayDir(), "deskside.db")); err != nil {
		t.Fatalf("relay state lost between runs: %v", err)
	}

	fresh, err := Open(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Reused || fresh.Password == first.Password {
		t.Fatalf("fresh run reused the old state: %+v", fresh)
	}
	if _, err := os.Stat(filepath.Join(fresh.RelayDir(), "deskside.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("fresh run kept the relay state: %v", err)
	}
}

func TestOpenLeavesForeignDirectories(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.txt")
	os.WriteFile(keep, []byte("mine"), 0o644)
	if _, err := Open(dir, true); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("Open(fresh) of a foreign directory = %v, want ErrNotOurs", err)
	}
	if _, err := Open(dir, false); err == nil || !strings.Contains(err.Error(), "make run DEV_DATA=") {
		t.Fatalf("Open of a foreign directory = %v, want a hint to use make run DEV_DATA=", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("a foreign file was removed: %v", err)
	}
}

func TestOpenCorruptState(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, false); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, stateFile), []byte("{"), 0o600)
	if _, err := Open(dir, false); err == nil || !strings.Contains(err.Error(), "make run-clean") {
		t.Fatalf("Open of a corrupt state = %v, want a hint to run make run-clean", err)
	}
}

func TestCheckPorts(t *testing.T) {
	st, err := Open(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st.Addrs.Web = l.Addr().String()
	if err := st.CheckPorts(); err == nil || !strings.Contains(err.Error(), st.Addrs.Web) {
		t.Fatalf("CheckPorts with %s taken = %v", st.Addrs.Web, err)
	}
}

func TestNeedsEnroll(t *testing.T) {
	needs, err := NeedsEnroll(filepath.Join(t.TempDir(), "agent"), "127.0.0.1:7443")
	if err != nil || !needs {
		t.Fatalf("NeedsEnroll without state = %v, %v; want true", needs, err)
	}
}

func TestInstructions(t *testing.T) {
	st, err := Open(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	text := Instructions(st, "/opt/deskside/bin")
	for _, want := range []string{
		"https://" + st.Addrs.Web + "/",
		"password: " + st.Password,
		"export DESKSIDE_CONFIG=" + st.CLIConfig(),
		"/opt/deskside/bin/deskside devices list",
		"login --relay " + st.Addrs.Relay + " --ca " + st.CAPath(),
		"make run-clean",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("instructions lack %q:\n%s", want, text)
		}
	}
}
