package enroll

import (
	"errors"
	"regexp"
	"testing"

	"github.com/deskside/deskside/internal/testkit"
)

func TestAppSpecificID(t *testing.T) {
	a, err := appSpecificID("0123456789abcdef0123456789abcdef\n")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(a) {
		t.Errorf("id %q is not 32 hex digits", a)
	}
	if a == "0123456789abcdef0123456789abcdef" {
		t.Errorf("the raw machine id is sent as is")
	}
	b, _ := appSpecificID("0123456789ABCDEF0123456789ABCDEF")
	c, _ := appSpecificID("fedcba9876543210fedcba9876543210")
	if a != b || a == c {
		t.Errorf("ids %q %q %q: want stable across case and distinct across machines", a, b, c)
	}
	for _, raw := range []string{"", "  \n", "00000000-0000-0000-0000-000000000000"} {
		if _, err := appSpecificID(raw); !errors.Is(err, ErrNoMachineID) {
			t.Errorf("appSpecificID(%q) = %v, want ErrNoMachineID", raw, err)
		}
	}
}

// TestMachineIDStable reads this machine's id twice.
func TestMachineIDStable(t *testing.T) {
	a, err := MachineID()
	if errors.Is(err, ErrNoMachineID) {
		testkit.Need(t, "a machine id", err, "Debian has /etc/machine-id from systemd or dbus (apt-get install dbus)")
	}
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := MachineID(); a != b {
		t.Errorf("MachineID changed: %q then %q", a, b)
	}
}
