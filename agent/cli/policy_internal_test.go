package cli

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/deskside/deskside/agent/orgtrust"
)

// TestPolicyGroups: `deskside-agent policy` sets and shows the local
// policy and groups, refuses bad group names and keeps the file as it was.
func TestPolicyGroups(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), "test", append([]string{"policy", "--state", dir}, args...), &out, &errb)
		return out.String() + errb.String(), code
	}
	if out, code := run("--groups", "lab,shop", "--commands", "off"); code != 0 ||
		!strings.Contains(out, "device groups:               lab, shop") || !strings.Contains(out, "remote commands and actions: off") ||
		!strings.Contains(out, "organisation key pinned:     none") {
		t.Fatalf("set (exit %d):\n%s", code, out)
	}
	if out, code := run("--groups", "lab,bad name"); code == 0 || !strings.Contains(out, `group "bad name"`) {
		t.Fatalf("bad group (exit %d):\n%s", code, out)
	}
	p, err := orgtrust.ReadPolicy(dir)
	if err != nil || !p.NoCommands || p.NoUnattended || !slices.Equal(p.Groups, []string{"lab", "shop"}) {
		t.Fatalf("stored policy %+v, %v", p, err)
	}
	if out, code := run(); code != 0 || !strings.Contains(out, "lab, shop") {
		t.Fatalf("show (exit %d):\n%s", code, out)
	}
	if out, code := run("--groups", "none"); code != 0 || !strings.Contains(out, "device groups:               none") {
		t.Fatalf("clear (exit %d):\n%s", code, out)
	}
	if out, code := run("--consent", "always"); code != 0 || !strings.Contains(out, "consent:                     always asks the logged-in user") {
		t.Fatalf("consent always (exit %d):\n%s", code, out)
	}
	if p, _ := orgtrust.ReadPolicy(dir); !p.AlwaysAsk || !p.NoCommands {
		t.Fatalf("stored policy %+v", p)
	}
	if out, code := run("--consent", "sometimes"); code == 0 || !strings.Contains(out, "use always or relay") {
		t.Fatalf("bad consent (exit %d):\n%s", code, out)
	}
	if out, code := run("--consent", "relay"); code != 0 || !strings.Contains(out, "as the relay's policy says") {
		t.Fatalf("consent relay (exit %d):\n%s", code, out)
	}
}
