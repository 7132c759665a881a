package server

// Device certificate renewal over the agent's stream (docs/adr/0019).

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/pki"
	"github.com/deskside/deskside/relay/store"
)

// renewCertificate signs a CSR from the device of this stream: same device
// id as its certificate, same key type, a new key. The new serial becomes
// pending, accepted besides the current one until the agent connects with
// it (Connect confirms it).
func (c *agentConn) renewCertificate(ref uint64, r *desksidev1.RenewCertificate) error {
	s := c.s
	refuse := func(err error) error {
		// Charged like a report over its limit: audited once per window,
		// and a device that keeps sending bad renewals is disconnected.
		v := s.ingest.Refused(c.id, "certificate renewal refused")
		if v.Audit {
			s.audit(c.ctx, "device:"+c.id, "device.cert_renewal_refused", c.id, wire.CleanString(err.Error(), 512)+
				fmt.Sprintf(" (one record per %s)", s.cfg.Ingest.Window))
		}
		if v.Disconnect {
			s.audit(context.WithoutCancel(c.ctx), "relay", "device.disconnected", c.id, fmt.Sprintf(
				"kept sending refused certificate renewals (%d in this window); refused at reconnect for %s", v.Refused, s.cfg.Ingest.Penalty))
			c.close("kept sending refused certificate renewals")
			return status.Errorf(codes.ResourceExhausted, "device %s kept sending refused certificate renewals and was disconnected; it may reconnect in %s",
				c.id, s.cfg.Ingest.Penalty)
		}
		return c.reject(ref, "certificate renewal", err)
	}
	if c.renewed {
		return refuse(fmt.Errorf("%w: a certificate was renewed on this stream already; reconnect with it", wire.ErrInvalid))
	}
	csr, err := pki.ParseCSR(r.GetCsrDer())
	if err != nil {
		return refuse(fmt.Errorf("%w: %v", wire.ErrInvalid, err))
	}
	if err := checkRenewal(csr, c.leaf, c.id); err != nil {
		return refuse(err)
	}
	now := s.cfg.Now()
	cert, err := s.ca.SignDevice(r.GetCsrDer(), c.id, now)
	if err != nil {
		return refuse(fmt.Errorf("%w: %v", wire.ErrInvalid, err))
	}
	serial := cert.SerialNumber.Text(16)
	current := c.leaf.SerialNumber.Text(16)
	switch err := s.store.SetPendingSerial(c.ctx, c.id, current, serial); {
	case errors.Is(err, store.ErrNotFound):
		return refuse(fmt.Errorf("%w: this stream's certificate %s is no longer the device's current one; reconnect", wire.ErrInvalid, current))
	case err != nil:
		return c.reject(ref, "certificate renewal", fmt.Errorf("%w: %v", errStore, err))
	}
	c.renewed = true
	s.audit(c.ctx, "device:"+c.id, "device.cert_renewal_issued", c.id, fmt.Sprintf("certificate %s (expires %s) issued to replace %s once the agent connects with it",
		serial, cert.NotAfter.UTC().Format(time.RFC3339), current))
	s.log.Info("device certificate renewed; pending until the agent connects with it", logKeyDevice, c.id, "serial", serial)
	return c.send(&desksidev1.RelayMessage{RefId: ref, Body: &desksidev1.RelayMessage_CertificateRenewed{
		CertificateRenewed: &desksidev1.CertificateRenewed{CertificateDer: cert.Raw}}})
}

// checkRenewal checks a renewal CSR against the certificate the device
// connected with: the subject names the device, the key has the same
// algorithm (and curve) and is a new one.
func checkRenewal(csr *x509.CertificateRequest, leaf *x509.Certificate, deviceID string) error {
	if csr.Subject.CommonName != deviceID {
		return fmt.Errorf("%w: the CSR names device %q, this stream is device %q", wire.ErrInvalid,
			wire.CleanString(csr.Subject.CommonName, 64), deviceID)
	}
	if csr.PublicKeyAlgorithm != leaf.PublicKeyAlgorithm {
		return fmt.Errorf("%w: the CSR's key is %s, the device's is %s", wire.ErrInvalid, csr.PublicKeyAlgorithm, leaf.PublicKeyAlgorithm)
	}
	newKey, err := x509.MarshalPKIXPublicKey(csr.PublicKey)
	if err != nil {
		return fmt.Errorf("%w: %v", wire.ErrInvalid, err)
	}
	if bytes.Equal(newKey, leaf.RawSubjectPublicKeyInfo) {
		return fmt.Errorf("%w: the CSR reuses the current key; generate a new one", wire.ErrInvalid)
	}
	if curveOf(csr.PublicKey) != curveOf(leaf.PublicKey) {
		return fmt.Errorf("%w: the CSR's key is on %s, the device's on %s", wire.ErrInvalid, curveOf(csr.PublicKey), curveOf(leaf.PublicKey))
	}
	return nil
}

// curveOf names an ECDSA key's curve ("" for other keys).
func curveOf(k any) string {
	if e, ok := k.(*ecdsa.PublicKey); ok {
		return e.Curve.Params().Name
	}
	return ""
}
