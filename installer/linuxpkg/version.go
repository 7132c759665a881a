package linuxpkg

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/deskside/deskside/installer/gitinfo"
)

// describeRE matches `git describe --tags --always --dirty`: a tag
// vX.Y.Z, optionally followed by -N-gHASH, or a bare HASH; then -dirty.
var describeRE = regexp.MustCompile(`^(?:v?(\d+\.\d+\.\d+)(?:-(\d+)-g([0-9a-f]+))?|([0-9a-f]{4,40}))(-dirty)?$`)

// PackageVersion turns `git describe --tags --always --dirty` into a
// version that dpkg and rpm both accept and order the way git does:
//
//	v1.2.3             → 1.2.3
//	v1.2.3-4-gabc1234  → 1.2.3+4.gabc1234 (after 1.2.3, before 1.2.4)
//	abc1234            → 0.0.0+N.gabc1234, N the commit count (no tag yet)
//
// and appends ".dirty" when the work tree had changes.
func PackageVersion(describe string, commits int) (string, error) {
	m := describeRE.FindStringSubmatch(strings.TrimSpace(describe))
	if m == nil {
		return "", fmt.Errorf("git describe gave %q, which is not vX.Y.Z[-N-gHASH][-dirty] or a commit hash: tag releases as vX.Y.Z (git tag v0.1.0)", describe)
	}
	var v string
	switch {
	case m[1] != "" && m[2] == "":
		v = m[1]
	case m[1] != "":
		v = m[1] + "+" + m[2] + ".g" + m[3]
	default:
		v = "0.0.0+" + strconv.Itoa(commits) + ".g" + m[4]
	}
	if m[5] != "" {
		v += ".dirty"
	}
	return v, nil
}

// GitVersion is the package version of the checkout at root
// (PackageVersion of its `git describe`) and the time of its last commit,
// the SOURCE_DATE_EPOCH that every timestamp in the packages is set to.
func GitVersion(ctx context.Context, root string) (version string, epoch time.Time, err error) {
	in, err := gitinfo.Read(ctx, root, "")
	if err != nil {
		return "", time.Time{}, err
	}
	version, err = PackageVersion(in.Describe, in.Commits)
	return version, in.Committed, err
}
