package gitinfo_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/installer/gitinfo"
	"github.com/deskside/deskside/internal/testkit"
)

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org",
		"GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// TestRead reads a repository this test makes: before and after a tag,
// with a change in the work tree, and outside any checkout.
func TestRead(t *testing.T) {
	_, err := exec.LookPath("git")
	testkit.Need(t, "git", err, "apt-get install git")
	ctx := context.Background()
	dir := t.TempDir()
	gitIn(t, dir, "init", "-q")
	os.WriteFile(filepath.Join(dir, "a"), []byte("a"), 0o644)
	gitIn(t, dir, "add", "a")
	gitIn(t, dir, "commit", "-q", "-m", "one")
	in, err := gitinfo.Read(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if in.Commits != 1 || len(in.Describe) < 7 || !in.Committed.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("untagged: %+v", in)
	}
	gitIn(t, dir, "tag", "v1.2.3")
	gitIn(t, dir, "commit", "-q", "--allow-empty", "-m", "two")
	os.WriteFile(filepath.Join(dir, "a"), []byte("changed"), 0o644)
	if in, err = gitinfo.Read(ctx, dir, ""); err != nil || in.Commits != 2 || !strings.HasPrefix(in.Describe, "v1.2.3-1-g") || !strings.HasSuffix(in.Describe, "-dirty") {
		t.Fatalf("tagged, one commit on, dirty: %+v %v", in, err)
	}
	if in, err = gitinfo.Read(ctx, dir, "v9.0.0"); err != nil || in.Describe != "v9.0.0" || in.Commits != 2 {
		t.Fatalf("describe given: %+v %v", in, err)
	}
	if _, err := gitinfo.Read(ctx, t.TempDir(), ""); err == nil || !strings.Contains(err.Error(), "build from a git checkout") {
		t.Fatalf("outside a checkout: %v", err)
	}
}
