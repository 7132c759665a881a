// Package gitinfo reads what a build is stamped with from the git
// checkout it is built from: `git describe`, the commit count and the last
// commit's time. installer/linuxpkg and installer/msi each turn it into
// the version format their package manager orders.
package gitinfo

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Info is the state of a checkout.
type Info struct {
	// Describe is `git describe --tags --always --dirty`: v1.4.2,
	// v1.4.2-7-gabcdef0, or a bare commit hash before the first tag;
	// "-dirty" when the work tree has changes.
	Describe string
	// Commits is `git rev-list --count HEAD`.
	Commits int
	// Committed is the last commit's time (SOURCE_DATE_EPOCH).
	Committed time.Time
}

// Read reads the checkout at dir. describe, when not empty, replaces
// `git describe` (a version given on the command line).
func Read(ctx context.Context, dir, describe string) (Info, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				stderr = " " + strings.TrimSpace(string(ee.Stderr))
			}
			return "", fmt.Errorf("git %s in %s: %v%s: build from a git checkout (git clone the repository)", strings.Join(args, " "), dir, err, stderr)
		}
		return strings.TrimSpace(string(out)), nil
	}
	var in Info
	in.Describe = describe
	if in.Describe == "" {
		d, err := git("describe", "--tags", "--always", "--dirty")
		if err != nil {
			return Info{}, err
		}
		in.Describe = d
	}
	count, err := git("rev-list", "--count", "HEAD")
	if err != nil {
		return Info{}, err
	}
	if in.Commits, err = strconv.Atoi(count); err != nil {
		return Info{}, fmt.Errorf("git rev-list --count HEAD in %s gave %q", dir, count)
	}
	ct, err := git("log", "-1", "--format=%ct")
	if err != nil {
		return Info{}, err
	}
	sec, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return Info{}, fmt.Errorf("git log -1 --format=%%ct in %s gave %q", dir, ct)
	}
	in.Committed = time.Unix(sec, 0).UTC()
	return in, nil
}
