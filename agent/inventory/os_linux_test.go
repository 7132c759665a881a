package inventory

import "testing"

func TestParseOSRelease(t *testing.T) {
	kv := parseOSRelease(`# comment
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
BUILD_ID=rolling
PRETTY_NAME='Single Quoted'
ESCAPED="say \"hi\" \\ there"
EMPTY=
garbage line
`)
	for k, want := range map[string]string{
		"NAME": "Debian GNU/Linux", "VERSION_ID": "12", "ID": "debian", "BUILD_ID": "rolling",
		"PRETTY_NAME": "Single Quoted", "ESCAPED": `say "hi" \ there`, "EMPTY": "",
	} {
		if got := kv[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if len(kv) != 7 {
		t.Errorf("%d keys: %v", len(kv), kv)
	}
}
