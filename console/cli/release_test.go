package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/console/cli"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

func TestReleaseKeygenSign(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := cli.Main(context.Background(), args, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
		return code, stdout.String(), stderr.String()
	}
	key, exe := filepath.Join(dir, "release-key.pem"), filepath.Join(dir, "deskside-agent")
	os.WriteFile(exe, []byte("an agent"), 0o755)
	code, out, errs := run("release", "keygen", key)
	if code != 0 || !strings.Contains(out, "deskside-agent update pin ") {
		t.Fatalf("keygen: %d %s %s", code, out, errs)
	}
	fp := strings.Fields(strings.SplitN(out, "Fingerprint: ", 2)[1])[0]
	if code, _, errs = run("release", "sign", "--key", key, "--version", "1.2", exe); code != 2 || !strings.Contains(errs, "v1.4.0") {
		t.Fatalf("bad version: %d %s", code, errs)
	}
	if code, _, errs = run("release", "sign", "--version", "v1.2.0", exe); code != 2 || !strings.Contains(errs, "--key") {
		t.Fatalf("no key: %d %s", code, errs)
	}
	if code, out, errs = run("release", "sign", "--key", key, "--version", "v1.2.0", "--os", "linux", "--arch", "arm64", exe); code != 0 {
		t.Fatalf("sign: %d %s %s", code, out, errs)
	}
	b, err := os.ReadFile(exe + cli.ReleaseManifestExt)
	if err != nil {
		t.Fatal(err)
	}
	r := &desksidev1.SignedRelease{}
	if err := proto.Unmarshal(b, r); err != nil {
		t.Fatal(err)
	}
	m, err := envelope.VerifyRelease(fp, r)
	if err != nil || m.GetVersion() != "v1.2.0" || m.GetArch() != "arm64" || m.GetSize() != 8 {
		t.Fatalf("manifest %v: %v", m, err)
	}
}
