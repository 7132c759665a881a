// Package pemfile reads certificates from PEM files, such as the relay CA
// (ca.pem in the relay's data directory) that the agent, the CLI, the dev
// launcher and the relay itself load.
package pemfile

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// ReadCertificate reads the first block of the PEM file at path, which must
// be a certificate.
func ReadCertificate(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return c, nil
}

// ReadCertificates reads every CERTIFICATE block of the PEM file at path
// (a bundle, such as the CAs a relay trusts during a rotation), skipping
// blocks of other types. A file without certificates gives an empty list.
// Errors wrap the fs error (os.ErrNotExist and the like) or name the file.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out, nil
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		out = append(out, c)
	}
}
