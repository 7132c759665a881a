package usersession_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deskside/deskside/agent/usersession"
)

// sessions writes logind session records (the format of
// /run/systemd/sessions/ID) into a directory.
func sessions(t *testing.T, recs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for id, body := range recs {
		if err := os.WriteFile(filepath.Join(dir, id), []byte("# This is private data. Do not parse.\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// logind keeps each session's FIFO next to its record.
	if err := os.WriteFile(filepath.Join(dir, "2.ref"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// noLoginctl is a loginctl that knows no session.
const noLoginctl = "/bin/false"

func TestFindNoSession(t *testing.T) {
	for name, dir := range map[string]string{
		"no logind":        filepath.Join(t.TempDir(), "missing"),
		"text logins only": sessions(t, map[string]string{"3": "UID=0\nUSER=root\nACTIVE=1\nTYPE=tty\nCLASS=user\nSTATE=active\nSEAT=seat0\n"}),
		"greeter":          sessions(t, map[string]string{"c1": "UID=65534\nUSER=nobody\nACTIVE=1\nTYPE=x11\nCLASS=greeter\nSTATE=active\nSEAT=seat0\nDISPLAY=:0\n"}),
	} {
		t.Run(name, func(t *testing.T) {
			f := &usersession.Finder{SessionsDir: dir, Loginctl: noLoginctl}
			_, err := f.Find(context.Background())
			if !errors.Is(err, usersession.ErrNoSession) || err.Error() != "no user is logged in at the console" {
				t.Fatalf("Find: %v", err)
			}
		})
	}
}

func TestFindPicksTheActiveSeat0Session(t *testing.T) {
	dir := sessions(t, map[string]string{
		"4": "UID=0\nUSER=root\nACTIVE=0\nTYPE=x11\nCLASS=user\nSTATE=online\nSEAT=seat0\nDISPLAY=:1\n",
		"7": "UID=65534\nUSER=nobody\nACTIVE=1\nTYPE=x11\nCLASS=user\nSTATE=active\nSEAT=seat0\nDISPLAY=:0\n",
		"9": "UID=0\nUSER=root\nACTIVE=1\nTYPE=x11\nCLASS=user\nSTATE=active\nREMOTE=1\nDISPLAY=:5\n",
	})
	f := &usersession.Finder{SessionsDir: dir, Proc: t.TempDir(), Loginctl: noLoginctl}
	s, err := f.Find(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "7" || s.UID != 65534 || s.User != "nobody" || s.Display != ":0" || s.Seat != "seat0" {
		t.Fatalf("picked %+v", s)
	}
	if len(s.Notes) != 1 || !strings.Contains(s.Notes[0], "3 users have graphical sessions") || !strings.Contains(s.Notes[0], "serving nobody's, the active one at the console (seat0)") {
		t.Fatalf("notes %q", s.Notes)
	}
}

func TestFindLockedScreen(t *testing.T) {
	dir := sessions(t, map[string]string{"7": "UID=65534\nUSER=nobody\nACTIVE=1\nTYPE=x11\nCLASS=user\nSTATE=active\nSEAT=seat0\nDISPLAY=:0\n"})
	// A loginctl that says the session's LockedHint is yes.
	lc := filepath.Join(t.TempDir(), "loginctl")
	if err := os.WriteFile(lc, []byte("#!/bin/sh\n[ \"$1 $2 $3 $4 $5\" = \"show-session 7 -p LockedHint --value\" ] && echo yes\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := &usersession.Finder{SessionsDir: dir, Proc: t.TempDir(), Loginctl: lc}
	s, err := f.Find(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !s.Locked || len(s.Notes) != 1 || s.Notes[0] != "the screen is locked" {
		t.Fatalf("locked %v, notes %q", s.Locked, s.Notes)
	}
}

func TestFindXAuthorityFromTheUsersProcesses(t *testing.T) {
	dir := sessions(t, map[string]string{"7": "UID=65534\nUSER=nobody\nACTIVE=1\nTYPE=x11\nCLASS=user\nSTATE=active\nSEAT=seat0\n"})
	proc := t.TempDir()
	write := func(pid, uid, env string) {
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(proc, pid, "status"), []byte("Name:\tx\nUid:\t"+uid+"\t"+uid+"\t"+uid+"\t"+uid+"\n"), 0o644)
		os.WriteFile(filepath.Join(proc, pid, "environ"), []byte(env), 0o644)
	}
	write("10", "0", "DISPLAY=:3\x00XAUTHORITY=/root/.Xauthority\x00")
	write("11", "65534", "HOME=/nonexistent\x00")
	write("12", "65534", "DISPLAY=:2\x00XAUTHORITY=/run/user/65534/gdm/Xauthority\x00")
	f := &usersession.Finder{SessionsDir: dir, Proc: proc, Loginctl: noLoginctl}
	s, err := f.Find(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Display != ":2" || s.XAuthority != "/run/user/65534/gdm/Xauthority" {
		t.Fatalf("display %q, xauthority %q", s.Display, s.XAuthority)
	}
}

func TestFindWaylandOnly(t *testing.T) {
	dir := sessions(t, map[string]string{"7": "UID=65534\nUSER=nobody\nACTIVE=1\nTYPE=wayland\nCLASS=user\nSTATE=active\nSEAT=seat0\n"})
	f := &usersession.Finder{SessionsDir: dir, Loginctl: noLoginctl}
	_, err := f.Find(context.Background())
	if err == nil || !strings.Contains(err.Error(), "nobody is logged in to a Wayland session") {
		t.Fatalf("Find: %v", err)
	}
}

func TestFindRegisteredSession(t *testing.T) {
	f := &usersession.Finder{SessionsDir: filepath.Join(t.TempDir(), "missing"), Loginctl: noLoginctl}
	if err := f.Register(4242, 65534, ":7", "/tmp/xauth"); err != nil {
		t.Fatal(err)
	}
	s, err := f.Find(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "ipc:4242" || s.User != "nobody" || s.Display != ":7" || s.XAuthority != "/tmp/xauth" {
		t.Fatalf("registered session %+v", s)
	}
	f.Unregister(4242)
	if _, err := f.Find(context.Background()); !errors.Is(err, usersession.ErrNoSession) {
		t.Fatalf("after the registration ended: %v", err)
	}
}

func TestAlive(t *testing.T) {
	dir := sessions(t, map[string]string{
		"7": "UID=65534\nUSER=nobody\nACTIVE=1\nTYPE=x11\nCLASS=user\nSTATE=active\nSEAT=seat0\nDISPLAY=:0\n",
		"8": "UID=65534\nUSER=nobody\nACTIVE=0\nTYPE=x11\nCLASS=user\nSTATE=closing\nDISPLAY=:1\n",
	})
	f := &usersession.Finder{SessionsDir: dir, Loginctl: noLoginctl}
	for id, want := range map[string]bool{"7": true, "8": false, "9": false} {
		if got := f.Alive(usersession.Session{ID: id}); got != want {
			t.Errorf("session %s alive: %v, want %v", id, got, want)
		}
	}
	if err := f.Register(31, 65534, ":3", ""); err != nil {
		t.Fatal(err)
	}
	if !f.Alive(usersession.Session{ID: "ipc:31"}) || f.Alive(usersession.Session{ID: "ipc:32"}) {
		t.Error("registered sessions")
	}
	f.Unregister(31)
	if f.Alive(usersession.Session{ID: "ipc:31"}) {
		t.Error("a registration outlived Unregister")
	}
}
