package inventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const (
	dpkgStatusPath = "/var/lib/dpkg/status"
	// rpmTimeout bounds rpm -qa; a large RPM database lists in about a
	// second.
	rpmTimeout = 30 * time.Second
	// maxRPMOutput bounds what rpm may print (about 30,000 packages).
	maxRPMOutput = 8 << 20
)

// errNoPackageDB says neither dpkg nor rpm is present.
var errNoPackageDB = errors.New("no supported package database (dpkg, rpm)")

// readSoftware lists dpkg and rpm packages. Either may be absent; a failure
// of one still returns the other's list.
func readSoftware(ctx context.Context) ([]*desksidev1.Software, error) {
	var (
		out   []*desksidev1.Software
		errs  []error
		found bool
	)
	if f, err := os.Open(dpkgStatusPath); err == nil {
		found = true
		pkgs, err := parseDpkgStatus(f)
		f.Close()
		out = append(out, pkgs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("dpkg: %w", err))
		}
	} else if !isNotExist(err) {
		found = true
		errs = append(errs, fmt.Errorf("dpkg: %w", err))
	}
	if rpm, err := exec.LookPath("rpm"); err == nil {
		found = true
		pkgs, err := listRPM(ctx, rpm)
		out = append(out, pkgs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("rpm: %w", err))
		}
	}
	if !found {
		return nil, fmt.Errorf("%s: %w", SectionSoftware, errNoPackageDB)
	}
	sortSoftware(out)
	return out, errors.Join(errs...)
}

// listRPM runs rpm -qa with a fixed query format and a timeout.
func listRPM(ctx context.Context, rpm string) ([]*desksidev1.Software, error) {
	ctx, cancel := context.WithTimeout(ctx, rpmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rpm, "-qa", "--qf", RPMQueryFormat)
	cmd.WaitDelay = 2 * time.Second
	var stdout limitedBuffer
	stdout.limit = maxRPMOutput
	var stderr limitedBuffer
	stderr.limit = 4096
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := clean(stderr.String()); msg != "" {
			return nil, fmt.Errorf("%w: %s", err, msg)
		}
		return nil, err
	}
	if stdout.truncated {
		return nil, fmt.Errorf("output larger than %d bytes", maxRPMOutput)
	}
	return parseRPMList(bytes.NewReader(stdout.Bytes()))
}

// limitedBuffer keeps the first limit bytes written to it and discards the
// rest, so a runaway child cannot exhaust memory.
type limitedBuffer struct {
	bytes.Buffer
	limit     int
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.Len(); room < len(p) {
		b.truncated = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
