package msi

import (
	"context"
	"fmt"
	"os"
	"os/exec"
)

// Environment variables SignerFromEnv reads.
const (
	EnvSignCert     = "DESKSIDE_SIGN_CERT"          // PEM certificate chain, the code-signing certificate first
	EnvSignKey      = "DESKSIDE_SIGN_KEY"           // PEM private key of that certificate
	EnvSignKeyPass  = "DESKSIDE_SIGN_KEY_PASS_FILE" // optional: file holding the key's passphrase
	EnvSignTimeURL  = "DESKSIDE_SIGN_TIMESTAMP_URL" // optional: RFC 3161 time-stamping authority
	signDescription = "Deskside agent"
	signURL         = "https://github.com/deskside/deskside"
)

// Signer Authenticode-signs Windows executables and MSIs with osslsigncode.
type Signer struct {
	Cert string // PEM certificate chain file, the code-signing certificate first
	Key  string // PEM private key file
	// KeyPassFile holds the key's passphrase (optional); osslsigncode
	// reads it from the file, so it never appears on a command line.
	KeyPassFile string
	// TimestampURL is an RFC 3161 time-stamping authority (optional): a
	// time-stamped signature stays valid after the certificate expires.
	TimestampURL string
}

// SignerFromEnv is the release signer configured in the environment
// (DESKSIDE_SIGN_CERT, DESKSIDE_SIGN_KEY, optionally
// DESKSIDE_SIGN_KEY_PASS_FILE and DESKSIDE_SIGN_TIMESTAMP_URL); nil
// when none is set, ErrSignerConfig when only part of it is.
func SignerFromEnv(getenv func(string) string) (*Signer, error) {
	s := &Signer{Cert: getenv(EnvSignCert), Key: getenv(EnvSignKey), KeyPassFile: getenv(EnvSignKeyPass), TimestampURL: getenv(EnvSignTimeURL)}
	if s.Cert == "" && s.Key == "" {
		if s.KeyPassFile != "" || s.TimestampURL != "" {
			return nil, fmt.Errorf("%w (%s or %s is set without them)", ErrSignerConfig, EnvSignKeyPass, EnvSignTimeURL)
		}
		return nil, nil
	}
	if s.Cert == "" || s.Key == "" {
		return nil, ErrSignerConfig
	}
	for _, f := range []string{s.Cert, s.Key, s.KeyPassFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("msi: signing: %w", err)
		}
	}
	return s, nil
}

// Sign writes to out a copy of in (a PE executable or an MSI) with an
// Authenticode signature (SHA-256).
func (s *Signer) Sign(ctx context.Context, in, out string) error {
	if err := needTools("osslsigncode"); err != nil {
		return err
	}
	args := []string{"sign", "-certs", s.Cert, "-key", s.Key, "-h", "sha256", "-n", signDescription, "-i", signURL}
	if s.KeyPassFile != "" {
		args = append(args, "-readpass", s.KeyPassFile)
	}
	if s.TimestampURL != "" {
		args = append(args, "-ts", s.TimestampURL)
	}
	args = append(args, "-in", in, "-out", out)
	if b, err := exec.CommandContext(ctx, "osslsigncode", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("msi: osslsigncode sign %s: %w: %s", in, err, b)
	}
	return nil
}

// Verify checks the Authenticode signature of path (an executable or an
// MSI) against the CA certificates in caFile (PEM) with osslsigncode: a
// file that is unsigned, altered since signing, or signed by a certificate
// that does not chain to caFile is refused with ErrVerify.
func Verify(ctx context.Context, path, caFile string) error {
	if err := needTools("osslsigncode"); err != nil {
		return err
	}
	b, err := exec.CommandContext(ctx, "osslsigncode", "verify", "-CAfile", caFile, "-in", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s: %v: %s", ErrVerify, path, err, b)
	}
	return nil
}
