package technicians

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPassword(t *testing.T) {
	for _, c := range []struct {
		name, pw string
		ok       bool
	}{
		{"alice", "correct horse battery", true},
		{"alice", "short-pw", false},
		{"alice", "elevenchars", false},
		{"alice", "twelve chars", true},
		{"alice", "Alice-is-here!", false}, // contains the name
		{"bo", "bo-bo-bo-bo-bo", true},     // a short name only when it is the password
		{"bobbybobby12", "BOBBYBOBBY12", false},
		{"alice", "aaaaaaaaaaaaaaa", false}, // one character repeated
		{"alice", "ééééééééééééé", false},
		{"alice", "Password1234", false}, // common, any case
		{"alice", "qwerty123456", false},
		{"alice", "ünïcödé pässwörd", true},
	} {
		err := CheckPassword(c.name, c.pw)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrWeakPassword)) {
			t.Errorf("CheckPassword(%q, %q) = %v, want ok %v", c.name, c.pw, err, c.ok)
		}
	}
	if len(common) < 40 {
		t.Fatalf("the common-password list has %d entries", len(common))
	}
}

func TestCheckNameRoleGroups(t *testing.T) {
	for name, ok := range map[string]bool{
		"alice": true, "a.b-c_d@example.org": true, "7of9": true,
		"": false, "-x": false, "al ice": false, "alice\n": false, "ä": false,
		strings.Repeat("x", 64): true, strings.Repeat("x", 65): false,
	} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", name, err, ok)
		}
	}
	for role, ok := range map[int]bool{0: false, 1: true, 2: true, 3: true, 4: true, 5: false, -1: false} {
		if err := CheckRole(role); (err == nil) != ok {
			t.Errorf("CheckRole(%d) = %v", role, err)
		}
	}
	g, err := CleanGroups([]string{" lab ", "front desk", "lab", "", "a\x1bb"})
	if err != nil || len(g) != 3 || g[1] != "front desk" || g[2] != "lab" {
		t.Fatalf("CleanGroups = %q, %v", g, err)
	}
	if _, err := CleanGroups(make([]string, MaxGroups+1)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("too many groups: %v", err)
	}
}
