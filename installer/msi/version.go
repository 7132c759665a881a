package msi

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/deskside/deskside/installer/gitinfo"
)

// Version is what a build is stamped with.
type Version struct {
	// Describe is `git describe --tags --always --dirty` (v1.4.2-7-gabcdef0,
	// or a bare commit before the first tag): the agent's -X main.version
	// and the MSI's ARPCOMMENTS.
	Describe string
	// Product is the MSI ProductVersion, MAJOR.MINOR.BUILD (see ProductVersion).
	Product string
}

var tagVersion = regexp.MustCompile(`^v?(\d+)\.(\d+)(?:\.\d+)?(?:-|$)`)

// ProductVersion makes the MSI ProductVersion of a build: MAJOR.MINOR from
// the nearest tag in describe (vMAJOR.MINOR[.PATCH]; 0.0 before the first
// tag) and BUILD the number of commits up to it. Windows Installer compares
// only these three fields (at most 255.255.65535), and a major upgrade needs
// each build to compare higher than the last: the commit count grows with
// every commit, where a tag's patch number does not.
func ProductVersion(describe string, commits int) (string, error) {
	if commits < 1 || commits > 65535 {
		return "", fmt.Errorf("%w: %d commits does not fit the MSI build field (1 to 65535)", ErrVersion, commits)
	}
	major, minor := 0, 0
	if m := tagVersion.FindStringSubmatch(strings.TrimSpace(describe)); m != nil {
		major, _ = strconv.Atoi(m[1])
		minor, _ = strconv.Atoi(m[2])
	}
	if major > 255 || minor > 255 {
		return "", fmt.Errorf("%w: tag %q: an MSI major and minor version are at most 255", ErrVersion, describe)
	}
	return fmt.Sprintf("%d.%d.%d", major, minor, commits), nil
}

// GitVersion reads the version of the checkout in dir from git.
// describe overrides `git describe` when not empty (make msi VERSION=…).
func GitVersion(ctx context.Context, dir, describe string) (Version, error) {
	in, err := gitinfo.Read(ctx, dir, describe)
	if err != nil {
		return Version{}, fmt.Errorf("%w: %v, or pass -version", ErrVersion, err)
	}
	product, err := ProductVersion(in.Describe, in.Commits)
	if err != nil {
		return Version{}, err
	}
	return Version{Describe: in.Describe, Product: product}, nil
}
