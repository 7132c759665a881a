package usersession

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

func TestSessionEnv(t *testing.T) {
	user := []string{"windir=C:\\Windows", "USERPROFILE=C:\\Users\\ana", "Path=C:\\Windows\\system32", "PATH=C:\\evil", "APPDATA=C:\\Users\\ana\\AppData\\Roaming", "novalue", "=C:=C:\\"}
	got := sessionEnv(user)
	want := []string{"=C:=C:\\", "APPDATA=C:\\Users\\ana\\AppData\\Roaming", "Path=C:\\Windows\\system32", "USERPROFILE=C:\\Users\\ana", "windir=C:\\Windows"}
	if !slices.Equal(got, want) {
		t.Fatalf("sessionEnv = %q\nwant %q", got, want)
	}
	if v := envValue(got, "userprofile"); v != "C:\\Users\\ana" {
		t.Errorf("envValue(USERPROFILE) = %q", v)
	}
	if v := envValue(got, "HOME"); v != "" {
		t.Errorf("envValue(HOME) = %q, want unset", v)
	}
}

func TestEnvBlock(t *testing.T) {
	b, err := envBlock([]string{"A=1", "Ünï=ç"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b); n < 2 || b[n-1] != 0 || b[n-2] != 0 {
		t.Fatalf("the block does not end with two NULs: %v", b)
	}
	var vars []string
	for s := range strings.SplitSeq(string(utf16.Decode(b[:len(b)-2])), "\x00") {
		vars = append(vars, s)
	}
	if !slices.Equal(vars, []string{"A=1", "Ünï=ç"}) {
		t.Errorf("decoded %q", vars)
	}
	if b, err := envBlock(nil); err != nil || !slices.Equal(b, []uint16{0, 0}) {
		t.Errorf("an empty environment: %v %v", b, err)
	}
	for _, bad := range []string{"A=1\x00B=2", "noequals"} {
		if _, err := envBlock([]string{bad}); err == nil {
			t.Errorf("%q was encoded", bad)
		}
	}
}

func TestHelperArgs(t *testing.T) {
	if got := helperArgs(`\\.\pipe\deskside-agent`, 0); !slices.Equal(got, []string{"desktop-helper", "--socket", `\\.\pipe\deskside-agent`}) {
		t.Errorf("helperArgs = %q", got)
	}
	if got := helperArgs("/run/a.sock", 45*time.Second); !slices.Equal(got, []string{"desktop-helper", "--socket", "/run/a.sock", "--consent-timeout", "45s"}) {
		t.Errorf("helperArgs = %q", got)
	}
}
