package pki

// CA rotation, in three steps run against the data directory
// (`deskside-relay ca rotate`; docs/adr/0019-certificate-renewal-and-ca-rotation.md):
//
//  1. Stage creates the next CA. Relays trust it for device certificates
//     and hand it to agents in Welcome; it signs nothing yet.
//  2. Activate makes it the active CA once agents have it: it signs the
//     server certificate and new device certificates; the old CA moves to
//     ca-previous.pem and stays trusted for device certificates, which
//     agents renew under the new CA when they next connect.
//  3. Retire drops the previous CAs.

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/deskside/deskside/internal/atomicfile"
	"github.com/deskside/deskside/internal/pemfile"
)

var (
	// ErrStaged is returned by Stage when a next CA is staged already.
	ErrStaged = errors.New("pki: a next CA is staged already: activate it with `deskside-relay ca rotate --activate`")
	// ErrNotStaged is returned by Activate without a staged CA.
	ErrNotStaged = errors.New("pki: no next CA is staged: stage one with `deskside-relay ca rotate`")
)

// RotationStatus describes the CAs of a data directory.
type RotationStatus struct {
	Active   *x509.Certificate
	Next     *x509.Certificate   // nil when none is staged
	Previous []*x509.Certificate // trusted for device certificates until Retire
}

// Status reads the CAs of dir.
func Status(dir string) (RotationStatus, error) {
	var st RotationStatus
	ca, _, err := loadPair(filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile))
	if err != nil {
		return st, err
	}
	st.Active = ca
	if next, _, err := loadPair(filepath.Join(dir, NextCAFile), filepath.Join(dir, nextCAKeyFile)); err == nil {
		st.Next = next
	} else if !errors.Is(err, os.ErrNotExist) {
		return st, err
	}
	st.Previous, err = readBundle(filepath.Join(dir, PreviousCAFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return st, err
	}
	return st, nil
}

// Stage creates the next CA in dir. ErrStaged when there is one.
func Stage(dir string, now time.Time) (*x509.Certificate, error) {
	if _, err := os.Stat(filepath.Join(dir, NextCAFile)); err == nil {
		return nil, ErrStaged
	}
	if _, _, err := loadPair(filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile)); err != nil {
		return nil, fmt.Errorf("%w (is --data the relay's data directory?)", err)
	}
	next, _, err := createCA(filepath.Join(dir, NextCAFile), filepath.Join(dir, nextCAKeyFile),
		"Deskside relay CA "+now.UTC().Format("2006-01-02"), now)
	return next, err
}

// Activate makes the staged CA the active one: the active CA is appended
// to ca-previous.pem, the next one's files replace ca.pem and ca-key.pem,
// and the server certificate is re-issued under it at the next Reload.
// Each step is an atomic file write; run again after a crash (an
// interrupted run is finished: a previous bundle that already holds the
// active CA is not appended to twice).
func Activate(dir string) error {
	next, nextKey, err := loadPair(filepath.Join(dir, NextCAFile), filepath.Join(dir, nextCAKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return ErrNotStaged
	} else if err != nil {
		return err
	}
	// The certificate alone: an interrupted run may have replaced the key.
	cur, err := pemfile.ReadCertificate(filepath.Join(dir, CAFile))
	if err != nil {
		return err
	}
	prev, err := readBundle(filepath.Join(dir, PreviousCAFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if !cur.Equal(next) {
		known := false
		for _, p := range prev {
			known = known || p.Equal(cur)
		}
		if !known {
			prev = append(prev, cur)
		}
		var b []byte
		for _, p := range prev {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Raw})...)
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, PreviousCAFile), b, 0o644); err != nil {
			return err
		}
	}
	if err := writePair(filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile), next.Raw, nextKey); err != nil {
		return err
	}
	for _, f := range []string{NextCAFile, nextCAKeyFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pki: remove %s: %w", f, err)
		}
	}
	return nil
}

// Retire stops trusting the previous CAs: device certificates they signed
// are refused from the next handshake (a running relay: its next Reload).
func Retire(dir string) ([]*x509.Certificate, error) {
	prev, err := readBundle(filepath.Join(dir, PreviousCAFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if err := os.Remove(filepath.Join(dir, PreviousCAFile)); err != nil {
		return nil, fmt.Errorf("pki: remove %s: %w", PreviousCAFile, err)
	}
	return prev, nil
}
