package update_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/update"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

func setup(t *testing.T) (*update.Updater, ed25519.PrivateKey) {
	t.Helper()
	dir := t.TempDir()
	exe := filepath.Join(dir, "agent")
	if err := os.WriteFile(exe, []byte("old"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	if err := update.Pin(dir, envelope.Fingerprint(key.Public().(ed25519.PublicKey))); err != nil {
		t.Fatal(err)
	}
	return &update.Updater{Dir: dir, Exe: exe, Version: "v1.0.0", ConfirmWithin: time.Minute}, key
}

func signed(t *testing.T, key ed25519.PrivateKey, exe []byte, v string) *desksidev1.SignedRelease {
	t.Helper()
	r, err := envelope.SignRelease(key, envelope.ReleaseManifestFor(exe, v, runtime.GOOS, runtime.GOARCH), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInstallStartConfirm(t *testing.T) {
	u, key := setup(t)
	if _, err := u.Install(signed(t, key, []byte("new"), "v1.1.0"), bytes.NewReader([]byte("new and more"))); !errors.Is(err, update.ErrContent) {
		t.Fatalf("longer stream than signed: %v", err)
	}
	if _, err := u.Install(signed(t, key, []byte("new"), "v1.1.0"), bytes.NewReader([]byte("ne"))); !errors.Is(err, update.ErrContent) {
		t.Fatalf("short stream: %v", err)
	}
	if content(t, u.Exe) != "old" {
		t.Fatal("a refused install changed the executable")
	}
	if _, err := u.Install(signed(t, key, []byte("new"), "v1.1.0"), bytes.NewReader([]byte("new"))); err != nil {
		t.Fatal(err)
	}
	if content(t, u.Exe) != "new" || content(t, u.Exe+update.PreviousExt) != "old" {
		t.Fatal("not swapped")
	}
	next := &update.Updater{Dir: u.Dir, Exe: u.Exe, Version: "v1.1.0", MaxAttempts: 2}
	for i := 1; i <= 2; i++ {
		if p, err := next.Start(); err != nil || p.Attempts != i {
			t.Fatalf("start %d: %+v %v", i, p, err)
		}
	}
	if _, err := next.Start(); !errors.Is(err, update.ErrRolledBack) {
		t.Fatalf("third start: %v", err)
	}
	if content(t, u.Exe) != "old" {
		t.Fatal("not rolled back")
	}
	if o := update.Last(u.Dir); o == nil || o.State != "rolled back" {
		t.Fatalf("outcome %+v", o)
	}

	// Again, confirmed this time.
	if _, err := u.Install(signed(t, key, []byte("new"), "v1.1.0"), bytes.NewReader([]byte("new"))); err != nil {
		t.Fatal(err)
	}
	if _, err := next.Start(); err != nil {
		t.Fatal(err)
	}
	if !next.Confirm() || next.Confirm() {
		t.Fatal("Confirm should report the pending update once")
	}
	if o := update.Last(u.Dir); o == nil || o.State != "installed" || o.Version != "v1.1.0" {
		t.Fatalf("outcome %+v", o)
	}
}

func TestVerifyRefuses(t *testing.T) {
	u, key := setup(t)
	if _, err := u.Verify(signed(t, key, []byte("x"), "v0.9.0")); !errors.Is(err, update.ErrDowngrade) {
		t.Errorf("downgrade: %v", err)
	}
	u.OrgPin, _ = update.ReadPin(u.Dir)
	if _, err := u.Verify(signed(t, key, []byte("x"), "v2.0.0")); !errors.Is(err, update.ErrOrgKey) {
		t.Errorf("release key = organisation key: %v", err)
	}
	u.OrgPin = ""
	r, _ := envelope.SignRelease(key, envelope.ReleaseManifestFor([]byte("x"), "v2.0.0", "plan9", "mips"), time.Now())
	if _, err := u.Verify(r); !errors.Is(err, update.ErrPlatform) {
		t.Errorf("platform: %v", err)
	}
	r, _ = envelope.SignRelease(key, &desksidev1.ReleaseManifest{Version: "v2.0.0", Os: runtime.GOOS, Arch: runtime.GOARCH, Sha256: make([]byte, 32), Size: update.MaxSize + 1}, time.Now())
	if _, err := u.Verify(r); !errors.Is(err, update.ErrContent) {
		t.Errorf("too large: %v", err)
	}
	os.Remove(filepath.Join(u.Dir, update.PinFile))
	if _, err := u.Verify(signed(t, key, []byte("x"), "v2.0.0")); !errors.Is(err, update.ErrNoPin) {
		t.Errorf("no pin: %v", err)
	}
}

// TestCheckStart: with CheckStart the new executable runs `version`
// before the swap; one that fails or names another version is refused and
// the running executable stays.
func TestCheckStart(t *testing.T) {
	for name, c := range map[string]struct{ script, want string }{
		"says the version": {"#!/bin/sh\necho deskside-agent v1.1.0\n", ""},
		"exits 2":          {"#!/bin/sh\necho 'panic: in init' >&2\nexit 2\n", `failed (exit status 2): "panic: in init"`},
		"another version":  {"#!/bin/sh\necho deskside-agent v9.9.9\n", `printed "deskside-agent v9.9.9", the release signs v1.1.0`},
		"not a program":    {"\x7fELF but not really", "failed: "},
	} {
		t.Run(name, func(t *testing.T) {
			u, key := setup(t)
			u.CheckStart = true
			_, err := u.Install(signed(t, key, []byte(c.script), "v1.1.0"), bytes.NewReader([]byte(c.script)))
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if content(t, u.Exe) != c.script {
					t.Fatal("not swapped in")
				}
				return
			}
			if !errors.Is(err, update.ErrNoStart) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "v1.0.0 keeps running") {
				t.Fatalf("want ErrNoStart with %q, got %v", c.want, err)
			}
			if content(t, u.Exe) != "old" {
				t.Fatal("a build that does not start was swapped in")
			}
			for _, left := range []string{u.Exe + ".next", filepath.Join(u.Dir, update.PendingFile)} {
				if _, err := os.Stat(left); !os.IsNotExist(err) {
					t.Fatalf("%s left behind (%v)", left, err)
				}
			}
		})
	}
}
