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

// TestReleaseUploadRollout: an admin uploads a signed build to a real
// relay, starts a staged rollout and reads its state; both are audited.
func TestReleaseUploadRollout(t *testing.T) {
	r := startRelay(t)
	admin := r.cli(t)
	admin.login("admin", adminPassword)
	dir := t.TempDir()
	key, exe, other := filepath.Join(dir, "release-key.pem"), filepath.Join(dir, "deskside-agent"), filepath.Join(dir, "other")
	os.WriteFile(exe, bytes.Repeat([]byte("agent "), 500_000), 0o755) // 3 MB: several messages
	os.WriteFile(other, []byte("another build"), 0o755)
	admin.must("release", "keygen", key)
	admin.must("release", "sign", "--key", key, "--version", "v1.1.0", "--os", "linux", "--arch", "amd64", exe)

	admin.fails(1, "not the one the manifest signs", "release", "upload", other, "--manifest", exe+cli.ReleaseManifestExt)
	admin.fails(1, "deskside release sign", "release", "upload", other)
	admin.fails(1, "no release v1.1.0", "release", "rollout", "--version", "v1.1.0", "--percent", "10")
	res := admin.must("release", "upload", exe)
	if !strings.Contains(res.stdout, "Uploaded v1.1.0 for linux/amd64") {
		t.Fatalf("upload: %s", res)
	}
	admin.fails(2, "one of --percent N, --group G or --all", "release", "rollout", "--version", "v1.1.0")
	admin.fails(2, "one of --percent N, --group G or --all", "release", "rollout", "--version", "v1.1.0", "--percent", "10", "--group", "pilot")
	admin.fails(1, "percentage from 1 to 100", "release", "rollout", "--version", "v1.1.0", "--percent", "250")
	if res := admin.must("release", "status"); !strings.Contains(res.stdout, "No rollout") {
		t.Fatalf("status before: %s", res)
	}
	admin.must("release", "rollout", "--version", "v1.1.0", "--percent", "10")
	if res := admin.must("release", "status"); !strings.Contains(res.stdout, "Rollout v1.1.0 for linux/amd64 to 10 % of the devices") {
		t.Fatalf("status: %s", res)
	}
	res = admin.must("audit", "--action", "release.*")
	if !strings.Contains(res.stdout, "release.upload") || !strings.Contains(res.stdout, "release.rollout") {
		t.Fatalf("audit: %s", res)
	}
}
