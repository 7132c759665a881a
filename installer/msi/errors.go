package msi

import "errors"

var (
	// ErrToolMissing is returned when wixl, msiinfo, msibuild or
	// osslsigncode cannot be found.
	ErrToolMissing = errors.New("a tool building the MSI is missing: install the Debian packages wixl msitools osslsigncode (make deps-msi)")
	// ErrVersion is returned for a version the MSI cannot carry.
	ErrVersion = errors.New("msi: version")
	// ErrSignerConfig is returned by SignerFromEnv when only part of the
	// signing configuration is set.
	ErrSignerConfig = errors.New("msi: signing needs both DESKSIDE_SIGN_CERT (certificate chain, PEM) and DESKSIDE_SIGN_KEY (its private key, PEM)")
	// ErrUnsigned is returned by Build when a signature is required and no
	// signer is configured.
	ErrUnsigned = errors.New("msi: a signed build was asked for but no signing certificate is configured: set DESKSIDE_SIGN_CERT and DESKSIDE_SIGN_KEY")
	// ErrVerify is returned by Verify when osslsigncode refuses a signature.
	ErrVerify = errors.New("msi: the Authenticode signature does not verify")
)
