package msi

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
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
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("%w: git %s in %s: %v (build from a git checkout, or pass -version)", ErrVersion, strings.Join(args, " "), dir, err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	if describe == "" {
		d, err := git("describe", "--tags", "--always", "--dirty")
		if err != nil {
			return Version{}, err
		}
		describe = d
	}
	count, err := git("rev-list", "--count", "HEAD")
	if err != nil {
		return Version{}, err
	}
	n, err := strconv.Atoi(count)
	if err != nil {
		return Version{}, fmt.Errorf("%w: git rev-list --count HEAD said %q", ErrVersion, count)
	}
	product, err := ProductVersion(describe, n)
	if err != nil {
		return Version{}, err
	}
	return Version{Describe: describe, Product: product}, nil
}
