package linuxpkg

import (
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deskside/deskside/proto/wire/envelope"
)

// TestAgentEnvFile checks the agent.env a build with a release key ships:
// the key on its own line, read back by the postinst's own parser (run
// with sh), and a key that is not a fingerprint refused with the command
// that prints one.
func TestAgentEnvFile(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	fp := envelope.Fingerprint(pub)
	plain, err := AgentEnvFile("")
	if err != nil || strings.Contains(string(plain), "\nDESKSIDE_RELEASE_KEY=") || !strings.Contains(string(plain), "#DESKSIDE_RELEASE_KEY=") {
		t.Fatalf("agent.env without a key: %v\n%s", err, plain)
	}
	baked, err := AgentEnvFile(fp)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(baked), "\nDESKSIDE_RELEASE_KEY="+fp+"\n") {
		t.Errorf("agent.env with a key lacks DESKSIDE_RELEASE_KEY=%s:\n%s", fp, baked)
	}
	for _, bad := range []string{"nonsense", fp + "x", "$(reboot)"} {
		_, err := AgentEnvFile(bad)
		if err == nil || !strings.Contains(err.Error(), "deskside release keygen") {
			t.Errorf("AgentEnvFile(%q): %v, want an error naming deskside release keygen", bad, err)
		}
	}

	// The postinst's envvalue, as it runs on the endpoint.
	script, err := embedded.ReadFile("files/agent-postinst.sh")
	if err != nil {
		t.Fatal(err)
	}
	s := string(script)
	start, end := strings.Index(s, "envvalue() {"), strings.Index(s, "\n}\n")
	if start < 0 || end < start {
		t.Fatal("agent-postinst.sh lacks envvalue()")
	}
	env := filepath.Join(t.TempDir(), "agent.env")
	for _, tc := range []struct{ file, want string }{
		{string(baked), fp},
		{string(plain), ""},
		{"DESKSIDE_RELEASE_KEY=\"" + fp + "\"\n", fp},
		{"  DESKSIDE_RELEASE_KEY = '" + fp + "'  \n", fp},
	} {
		if err := os.WriteFile(env, []byte(tc.file), 0o600); err != nil {
			t.Fatal(err)
		}
		sh := "ENV_FILE=" + env + "\n" + s[start:end+3] + "envvalue DESKSIDE_RELEASE_KEY\n"
		out, err := exec.Command("sh", "-c", sh).Output()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("envvalue DESKSIDE_RELEASE_KEY of\n%s= %q (%v), want %q", tc.file, out, err, tc.want)
		}
	}
}
