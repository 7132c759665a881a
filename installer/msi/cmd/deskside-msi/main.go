// Command deskside-msi builds the Windows MSI of the Deskside agent (make
// msi): the agent and tray cross-compiled for windows/amd64, the MSI made
// with wixl, all three signed with osslsigncode when DESKSIDE_SIGN_CERT
// and DESKSIDE_SIGN_KEY name a code-signing certificate and its key.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/deskside/deskside/installer/msi"
)

func main() {
	out := flag.String("out", "bin", "directory for deskside-agent.msi and the signed executables")
	repo := flag.String("repo", ".", "the Deskside checkout to build")
	version := flag.String("version", "", "version to stamp (default: git describe --tags --always --dirty)")
	sign := flag.String("sign", "auto", "auto: sign when DESKSIDE_SIGN_CERT and DESKSIDE_SIGN_KEY are set; required: fail without them (release builds); off")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, *out, *repo, *version, *sign)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "deskside-msi:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, repo, describe, sign string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := msi.Config{Repo: repo, OutDir: out, Logger: log}
	switch sign {
	case "auto", "required":
		s, err := msi.SignerFromEnv(os.Getenv)
		if err != nil {
			return err
		}
		cfg.Signer, cfg.RequireSigned = s, sign == "required"
	case "off":
	default:
		return fmt.Errorf("-sign %q: want auto, required or off", sign)
	}
	v, err := msi.GitVersion(ctx, repo, describe)
	if err != nil {
		return err
	}
	cfg.Version = v
	res, err := msi.Build(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("%s (version %s, %s)\n", res.MSI, v.Product, v.Describe)
	if !res.Signed {
		fmt.Printf("unsigned: set %s and %s to sign it (make msi MSI_SIGN=required for a release)\n", msi.EnvSignCert, msi.EnvSignKey)
	}
	return nil
}
