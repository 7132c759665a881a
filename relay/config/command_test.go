package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCheckCommand: `config check` prints each value with its source,
// secrets redacted, and fails on a bad file naming the line.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "relay.yaml")
	os.WriteFile(f, []byte("listen: \":9001\"\nweb_listen: \":9002\"\nadmin_password: hunter2\ndatabase: postgres://deskside:pgsecret@db/deskside\n"), 0o600)
	lookup := func(k string) (string, bool) {
		if k == "DESKSIDE_WEB_LISTEN" {
			return "off", true
		}
		return "", false
	}
	var out, errOut strings.Builder
	code := command([]string{"check", "--config", f, "--admin-listen", "off"}, &out, &errOut, lookup, "")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	o := out.String()
	for _, re := range []string{
		`# configuration file: ` + f + `\n`,
		`listen: ":9001" +# file ` + f + `:1\n`,
		`web_listen: "off" +# env DESKSIDE_WEB_LISTEN\n`,
		`admin_listen: "off" +# flag --admin-listen\n`,
		`admin_password: "<redacted>" +# file ` + f + `:3\n`,
		`database: "postgres://deskside:xxxxx@db/deskside" +# file`,
		`turn_listen: ":3478" +# default\n`,
	} {
		if !regexpMatch(re, o) {
			t.Errorf("output lacks %s:\n%s", re, o)
		}
	}
	if strings.Contains(o, "hunter2") || strings.Contains(o, "pgsecret") {
		t.Errorf("output shows a secret:\n%s", o)
	}

	os.WriteFile(f, []byte("listen: \":1\"\nturn_urls: [\"turn:turn.example:3478\"]\nweb_lisen: x\n"), 0o600)
	out.Reset()
	errOut.Reset()
	if code := command([]string{"check", "--config", f}, &out, &errOut, nil, ""); code != 1 || !strings.Contains(errOut.String(), f+":3: web_lisen: unknown key; did you mean web_listen?") {
		t.Errorf("bad file: exit %d, %s", code, errOut.String())
	}
	// Each key is fine alone, the whole is not: CheckAndSetDefaults says so.
	os.WriteFile(f, []byte("turn_urls: [\"turn:turn.example:3478\"]\n"), 0o600)
	errOut.Reset()
	if code := command([]string{"check", "--config", f}, &out, &errOut, nil, ""); code != 1 || !strings.Contains(errOut.String(), "TURNSecret") {
		t.Errorf("external TURN without a secret: exit %d, %s", code, errOut.String())
	}
	for _, args := range [][]string{nil, {"nope"}, {"example", "extra"}} {
		if code := command(args, &out, &errOut, nil, ""); code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage)", args, code)
		}
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
