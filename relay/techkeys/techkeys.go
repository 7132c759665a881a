// Package techkeys keeps technicians' public keys and the certificates
// the organisation key made for them (docs/adr 22), so the first run is
// "create a key, ask an admin, done": a technician registers a key, an
// admin fetches it, certifies it offline and publishes the certificate,
// and the technician's CLI or browser picks the certificate up.
//
// The relay holds no private key and vouches for nothing: agents verify
// every certificate against the organisation key they pin. What the relay
// checks here (the certificate's signature, that its organisation key is
// the one in the relay's chain, that its technician exists) only keeps
// mistakes out of the list.
//
// Storage: one relay setting per technician (SettingPrefix + name) holding
// a TechnicianKeys, and an index setting naming the technicians that have
// keys. Read-modify-write is serialized by a mutex, so relays sharing one
// database may lose a concurrent change to the same technician's keys
// (retrying the command repairs it).
package techkeys

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/store"
)

// Setting names: SettingPrefix+NAME holds NAME's keys, IndexSetting the
// names with keys (a JSON array).
const (
	SettingPrefix = "technician-keys/"
	IndexSetting  = "technician-keys"
)

// MaxKeys is how many keys one technician may have (a CLI on each of a
// few machines and a few browsers); MaxLabel is a label's length in runes.
const (
	MaxKeys  = 8
	MaxLabel = 64
)

// CertifiedLabel labels a key an admin certified before it was registered.
const CertifiedLabel = "certified by an admin"

// Errors the RPC adapter maps to status codes; the wrapped messages name
// the next step.
var (
	// ErrInvalid: a malformed key, label or certificate.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound: no such key, or no such technician.
	ErrNotFound = errors.New("not found")
	// ErrTooMany: the technician has MaxKeys keys already.
	ErrTooMany = errors.New("too many keys")
	// ErrWrongOrg: a certificate signed by another organisation key than
	// the one the relay's chain names.
	ErrWrongOrg = errors.New("another organisation key")
)

// Store is what the keys need of the relay's store.
type Store interface {
	GetRelaySetting(ctx context.Context, name string) ([]byte, error)
	PutRelaySetting(ctx context.Context, name string, data []byte) error
	GetTechnician(ctx context.Context, name string) (store.Technician, error)
}

var _ Store = store.Store(nil)

// Keys is the technician key registry.
type Keys struct {
	store Store
	now   func() time.Time
	// OrgFingerprint returns the fingerprint of the organisation key the
	// relay's chain names ("" when it holds none: any organisation key is
	// accepted). Nil skips the check.
	OrgFingerprint func(ctx context.Context) (string, error)

	mu sync.Mutex
}

// New returns the registry on st; now is the clock (nil: time.Now).
func New(st Store, now func() time.Time) *Keys {
	if now == nil {
		now = time.Now
	}
	return &Keys{store: st, now: now}
}

// CleanLabel is label as stored: printable, trimmed, at most MaxLabel
// runes.
func CleanLabel(label string) string {
	return strings.TrimSpace(wire.CleanString(strings.TrimSpace(label), MaxLabel))
}

func (k *Keys) load(ctx context.Context, technician string) (*desksidev1.TechnicianKeys, error) {
	b, err := k.store.GetRelaySetting(ctx, SettingPrefix+technician)
	if errors.Is(err, store.ErrNotFound) {
		return &desksidev1.TechnicianKeys{}, nil
	} else if err != nil {
		return nil, err
	}
	ks := &desksidev1.TechnicianKeys{}
	if err := proto.Unmarshal(b, ks); err != nil {
		return nil, fmt.Errorf("technician keys of %q: %w", technician, err)
	}
	return ks, nil
}

func (k *Keys) save(ctx context.Context, technician string, ks *desksidev1.TechnicianKeys) error {
	b, err := proto.Marshal(ks)
	if err != nil {
		return err
	}
	if err := k.store.PutRelaySetting(ctx, SettingPrefix+technician, b); err != nil {
		return err
	}
	return k.index(ctx, technician, len(ks.GetKeys()) > 0)
}

func (k *Keys) names(ctx context.Context) ([]string, error) {
	b, err := k.store.GetRelaySetting(ctx, IndexSetting)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(b) == 0) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return nil, fmt.Errorf("technician key index: %w", err)
	}
	return names, nil
}

// index adds technician to the index or removes them.
func (k *Keys) index(ctx context.Context, technician string, has bool) error {
	names, err := k.names(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(names, technician) == has {
		return nil
	}
	if has {
		names = append(names, technician)
		slices.Sort(names)
	} else {
		names = slices.DeleteFunc(names, func(n string) bool { return n == technician })
	}
	b, err := json.Marshal(names)
	if err != nil {
		return err
	}
	return k.store.PutRelaySetting(ctx, IndexSetting, b)
}

// Register adds technician's public key with label and returns it as
// stored; created is false when the key was registered already (nothing
// changes then).
func (k *Keys) Register(ctx context.Context, technician string, pub []byte, label string) (key *desksidev1.TechnicianKey, created bool, err error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, false, fmt.Errorf("%w: not an Ed25519 public key (32 bytes); create one with deskside technician keygen", ErrInvalid)
	}
	label = CleanLabel(label)
	k.mu.Lock()
	defer k.mu.Unlock()
	ks, err := k.load(ctx, technician)
	if err != nil {
		return nil, false, err
	}
	if old := find(ks, pub); old != nil {
		return old, false, nil
	}
	if len(ks.GetKeys()) >= MaxKeys {
		return nil, false, fmt.Errorf("%w: %s has %d keys, the most a technician may have; delete one first (deskside technician keys, then deskside technician delete-key FINGERPRINT)", ErrTooMany, technician, MaxKeys)
	}
	key = &desksidev1.TechnicianKey{Technician: technician, PublicKey: bytes.Clone(pub), Fingerprint: envelope.Fingerprint(pub),
		Label: label, RegisteredAt: timestamppb.New(k.now())}
	ks.Keys = append(ks.Keys, key)
	if err := k.save(ctx, technician, ks); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

func find(ks *desksidev1.TechnicianKeys, pub []byte) *desksidev1.TechnicianKey {
	for _, key := range ks.GetKeys() {
		if bytes.Equal(key.GetPublicKey(), pub) {
			return key
		}
	}
	return nil
}

// List returns technician's keys, oldest first.
func (k *Keys) List(ctx context.Context, technician string) ([]*desksidev1.TechnicianKey, error) {
	ks, err := k.load(ctx, technician)
	if err != nil {
		return nil, err
	}
	return ks.GetKeys(), nil
}

// ListAll returns every technician's keys, by technician name.
func (k *Keys) ListAll(ctx context.Context) ([]*desksidev1.TechnicianKey, error) {
	names, err := k.names(ctx)
	if err != nil {
		return nil, err
	}
	var out []*desksidev1.TechnicianKey
	for _, n := range names {
		ks, err := k.List(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, ks...)
	}
	return out, nil
}

// Certified is what Publish did.
type Certified struct {
	Key  *desksidev1.TechnicianKey
	Body *desksidev1.TechnicianCertificateBody
	// Registered is set when the key was not registered before.
	Registered bool
	// Replaced is set when the key had a certificate, now replaced.
	Replaced bool
}

// Publish stores a certificate with the key it certifies: its signature
// must verify under the organisation key it names, that key must be the
// relay's (OrgFingerprint), its technician must exist and it must not have
// expired. A key not registered yet is registered with CertifiedLabel.
func (k *Keys) Publish(ctx context.Context, cert *desksidev1.TechnicianCertificate) (*Certified, error) {
	body, err := envelope.ParseCertificate(cert)
	if err != nil {
		return nil, fmt.Errorf("%w: %v; sign it with deskside technician certify NAME --org-key FILE", ErrInvalid, err)
	}
	pub := body.GetPublicKey()
	switch {
	case len(pub) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("%w: the certificate's technician key is not an Ed25519 public key; certify the key deskside technician keys lists", ErrInvalid)
	case body.GetTechnician() == "":
		return nil, fmt.Errorf("%w: the certificate names no technician; certify again with deskside technician certify NAME", ErrInvalid)
	case !k.now().Before(body.GetNotAfter().AsTime()):
		return nil, fmt.Errorf("%w: the certificate expired on %s; certify again (deskside technician certify NAME --days N)", ErrInvalid, body.GetNotAfter().AsTime().UTC().Format(time.DateOnly))
	}
	if k.OrgFingerprint != nil {
		want, err := k.OrgFingerprint(ctx)
		if err != nil {
			return nil, fmt.Errorf("the relay's organisation key chain: %w", err)
		}
		if got := envelope.Fingerprint(body.GetOrgPublicKey()); want != "" && got != want {
			return nil, fmt.Errorf("%w: the certificate is signed by organisation key %s, the relay's is %s; certify with the organisation key %s (--org-key FILE)", ErrWrongOrg, got, want, want)
		}
	}
	name := body.GetTechnician()
	if _, err := k.store.GetTechnician(ctx, name); errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no technician %q on this relay; check the name (deskside technician keys --all)", ErrNotFound, name)
	} else if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	ks, err := k.load(ctx, name)
	if err != nil {
		return nil, err
	}
	res := &Certified{Body: body}
	key := find(ks, pub)
	if key == nil {
		if len(ks.GetKeys()) >= MaxKeys {
			return nil, fmt.Errorf("%w: %s has %d keys, the most a technician may have; delete one first (deskside technician delete-key --technician %s FINGERPRINT)", ErrTooMany, name, MaxKeys, name)
		}
		key = &desksidev1.TechnicianKey{Technician: name, PublicKey: bytes.Clone(pub), Fingerprint: envelope.Fingerprint(pub),
			Label: CertifiedLabel, RegisteredAt: timestamppb.New(k.now())}
		ks.Keys = append(ks.Keys, key)
		res.Registered = true
	}
	res.Replaced = key.GetCertificate() != nil
	key.Certificate = &desksidev1.TechnicianCertificate{Body: bytes.Clone(cert.GetBody()), Signature: bytes.Clone(cert.GetSignature())}
	if err := k.save(ctx, name, ks); err != nil {
		return nil, err
	}
	res.Key = key
	return res, nil
}

// Delete removes technician's key with fingerprint and returns it.
func (k *Keys) Delete(ctx context.Context, technician, fingerprint string) (*desksidev1.TechnicianKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ks, err := k.load(ctx, technician)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(ks.GetKeys(), func(key *desksidev1.TechnicianKey) bool { return key.GetFingerprint() == fingerprint })
	if i < 0 {
		return nil, fmt.Errorf("%w: %s has no key %q; see deskside technician keys %s", ErrNotFound, technician, fingerprint, technician)
	}
	key := ks.Keys[i]
	ks.Keys = slices.Delete(ks.Keys, i, i+1)
	if err := k.save(ctx, technician, ks); err != nil {
		return nil, err
	}
	return key, nil
}

// Forget removes every key of technician (a deleted account) and returns
// them, so that a later account of the same name starts without keys.
func (k *Keys) Forget(ctx context.Context, technician string) ([]*desksidev1.TechnicianKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ks, err := k.load(ctx, technician)
	if err != nil || len(ks.GetKeys()) == 0 {
		return nil, err
	}
	if err := k.save(ctx, technician, &desksidev1.TechnicianKeys{}); err != nil {
		return nil, err
	}
	return ks.GetKeys(), nil
}
