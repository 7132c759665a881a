// Command deskside-package builds Deskside's Linux packages (`make
// packages`): deskside-agent and deskside-relay as .deb and .rpm, an SPDX
// SBOM for each, and SHA256SUMS, into dist/ (installer/linuxpkg).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/deskside/deskside/installer/linuxpkg"
)

func main() {
	root := flag.String("root", ".", "the Deskside checkout to build from (a git work tree)")
	out := flag.String("out", "dist", "directory the packages, SBOMs and SHA256SUMS go to")
	version := flag.String("version", "", "package version (default: from git describe --tags --always --dirty)")
	releaseKey := flag.String("release-key", os.Getenv("RELEASE_KEY"), "release key `FINGERPRINT` (deskside release keygen prints it) written into the agent's agent.env, so every install pins it and updates itself (env RELEASE_KEY)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "deskside-package:", err)
		os.Exit(1)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	res, err := linuxpkg.Build(ctx, linuxpkg.Options{Root: *root, Out: *out, Version: *version, Logger: log, ReleaseKey: *releaseKey})
	if err != nil {
		fmt.Fprintln(os.Stderr, "deskside-package:", err)
		os.Exit(1)
	}
	fmt.Printf("Deskside %s (SOURCE_DATE_EPOCH=%d):\n", res.Version, res.Epoch.Unix())
	if *releaseKey == "" {
		fmt.Println("  no release key: agents installed from these packages do not update themselves unless DESKSIDE_RELEASE_KEY is given at install (make packages RELEASE_KEY=FINGERPRINT)")
	}
	for _, f := range res.Files {
		fi, err := os.Stat(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "deskside-package:", err)
			os.Exit(1)
		}
		fmt.Printf("  %-60s %8.1f MB\n", filepath.Join(*out, filepath.Base(f)), float64(fi.Size())/1e6)
	}
}
