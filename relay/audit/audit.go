// Package audit keeps the relay's audit log tamper-evident. Every event is
// chained to the one before (store.AuditEvent.PrevHash) and sealed with
// HMAC-SHA256 under a key kept outside the database: the key file
// (KeyFile, 0600, in the relay's data directory), created on the first
// start and copied, like the CA, to every relay that shares the database.
// Someone with only the database can edit, delete or insert records and
// even recompute every hash, but cannot produce the seals, so Verify
// finds the first record that no longer matches.
//
// Logs written before the key existed keep their unkeyed SHA-256 chain
// (store.AuditHash). The first keyed record is an "audit.rekeyed" anchor
// whose sequence number the key file records; its seal covers the hash of
// the last unkeyed record, which pins the whole unkeyed part from then on.
// Verify checks that part as before and reports it as unkeyed.
//
// What a chain cannot show: records removed from the end of the log.
// Verify reports the newest record it saw so an operator can compare.
package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/deskside/deskside/internal/atomicfile"
	"github.com/deskside/deskside/relay/store"
)

// KeyFile is the key file's name in the relay's data directory.
const KeyFile = "audit.key"

// ActionRekeyed is the action of the anchor record where the keyed chain
// starts.
const ActionRekeyed = "audit.rekeyed"

// sealDomain separates the seal from any other use of the key.
const sealDomain = "deskside audit seal v1\x00"

// Store is what the audit log needs of the relay's store.
type Store interface {
	AppendAudit(ctx context.Context, e store.AuditEvent, seal store.AuditSeal) (store.AuditEvent, error)
	AppendAudits(ctx context.Context, events []store.AuditEvent, seal store.AuditSeal) ([]store.AuditEvent, error)
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error)
	ScanAudit(ctx context.Context, after int64, limit int) ([]store.AuditEvent, error)
}

var _ Store = store.Store(nil)

// Config configures Open.
type Config struct {
	// KeyFile is the key file's path (required); relay/service puts it in
	// the data directory unless --audit-key names another.
	KeyFile string
	// Store holds the log (required).
	Store Store
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives what Open did; default discards.
	Logger *slog.Logger
}

// CheckAndSetDefaults validates c and fills its defaults.
func (c *Config) CheckAndSetDefaults() error {
	var errs []error
	if c.KeyFile == "" {
		errs = append(errs, errors.New("audit: KeyFile is required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("audit: Store is required"))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// Log appends sealed events and verifies the chain.
type Log struct {
	key    []byte
	anchor int64
	st     Store
	now    func() time.Time
	app    *appender
}

// ErrKeyMissing is returned by Open when the log is already keyed but the
// key file is not there.
var ErrKeyMissing = errors.New("audit: the audit log is keyed but its key file is missing")

// Open loads the key file, or creates it (with a new random key) and
// appends the anchor record when there is none. A key file whose anchor
// is not recorded yet (the relay stopped between writing the file and
// appending the anchor) is completed: the anchor found in the log is
// recorded, or a new one appended.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	l := &Log{st: cfg.Store, now: cfg.Now}
	l.app = newAppender(MaxBatch, func(ctx context.Context, events []store.AuditEvent) ([]store.AuditEvent, error) {
		return l.st.AppendAudits(ctx, events, l.Seal)
	})
	key, anchor, err := readKeyFile(cfg.KeyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A keyed log without the key: refuse rather than start a second
		// key the other relays (or a verifier) do not have.
		prior, err := l.st.ListAudit(ctx, store.AuditFilter{Action: ActionRekeyed, Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		if len(prior) > 0 {
			return nil, fmt.Errorf("%w: record %d (%s) started a keyed chain, but %s does not exist; copy %s from the relay that created it (or restore it from a backup of its data directory), as with the CA",
				ErrKeyMissing, prior[0].Seq, ActionRekeyed, cfg.KeyFile, KeyFile)
		}
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("audit: new key: %w", err)
		}
		if err := writeKeyFile(cfg.KeyFile, key, 0); err != nil {
			return nil, err
		}
		cfg.Logger.Info("audit key created", "path", cfg.KeyFile, "key", keyID(key))
	case err != nil:
		return nil, err
	}
	l.key, l.anchor = key, anchor
	if l.anchor > 0 {
		return l, nil
	}
	// Find the anchor this key appended before a stop, else append it.
	// Relays starting together with one new key may each append one: the
	// first is the anchor, the others are keyed records like any other.
	if l.anchor, err = l.firstAnchor(ctx); err != nil {
		return nil, err
	}
	if l.anchor == 0 {
		_, err := l.st.AppendAudit(ctx, store.AuditEvent{
			Time: l.now(), Actor: "relay", Action: ActionRekeyed, Target: "key " + keyID(key),
			Detail: "the keyed chain (HMAC-SHA256) starts here; the records before it are unkeyed",
		}, l.Seal)
		if err != nil {
			return nil, fmt.Errorf("audit: anchor: %w", err)
		}
		if l.anchor, err = l.firstAnchor(ctx); err != nil {
			return nil, err
		}
	}
	if err := writeKeyFile(cfg.KeyFile, key, l.anchor); err != nil {
		return nil, err
	}
	cfg.Logger.Info("audit log keyed", "anchor", l.anchor, "key", keyID(key))
	return l, nil
}

// firstAnchor is the oldest "audit.rekeyed" record sealed with l's key,
// 0 if there is none.
func (l *Log) firstAnchor(ctx context.Context) (int64, error) {
	found, err := l.st.ListAudit(ctx, store.AuditFilter{Action: ActionRekeyed})
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	var first int64
	for _, e := range found { // newest first
		if hmac.Equal([]byte(e.Hash), []byte(l.Seal(e.PrevHash, e))) {
			first = e.Seq
		}
	}
	return first, nil
}

// CreateKeyFile writes a new key to path (0600) without an anchor yet:
// relays started together on one new database with this file (copied to
// each) agree on the key, and the first of them to start appends the
// anchor. It refuses to replace an existing file.
func CreateKeyFile(path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("audit: %s exists; it is the relay's audit key, keep it", path)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("audit: new key: %w", err)
	}
	return writeKeyFile(path, key, 0)
}

// Append seals e onto the chain and returns it as stored, once it is
// committed. Appends made at the same time share a store transaction (up
// to MaxBatch records; see appender), in which each is chained and sealed
// in turn; if that transaction fails, each of them gets its error.
func (l *Log) Append(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	return l.app.append(ctx, e)
}

// Seal is the keyed hash of an event: hex HMAC-SHA256 over the encoding
// store.AuditHash uses.
func (l *Log) Seal(prev string, e store.AuditEvent) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(sealDomain))
	store.AuditEncode(m, prev, e)
	return hex.EncodeToString(m.Sum(nil))
}

// Anchor is the sequence number of the first keyed record.
func (l *Log) Anchor() int64 { return l.anchor }

// KeyID names the key without revealing it (to tell relays' keys apart).
func (l *Log) KeyID() string { return keyID(l.key) }

func keyID(key []byte) string {
	h := sha256.Sum256(append([]byte("deskside audit key id\x00"), key...))
	return hex.EncodeToString(h[:6])
}

const keyFileHeader = `# Deskside relay audit key. It seals the audit log (HMAC-SHA256); anyone
# holding it can forge the log, and without it the log cannot be verified.
# Keep it off the database host's backups. Relays sharing one database
# need the same file: copy it with the CA (ca.pem, ca-key.pem).
`

func writeKeyFile(path string, key []byte, anchor int64) error {
	var b bytes.Buffer
	b.WriteString(keyFileHeader)
	fmt.Fprintf(&b, "key %s\nanchor %d\n", hex.EncodeToString(key), anchor)
	if err := atomicfile.WriteFile(path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("audit: write key file: %w", err)
	}
	return nil
}

func readKeyFile(path string) (key []byte, anchor int64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, err
		}
		return nil, 0, fmt.Errorf("audit: key file: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, 0, fmt.Errorf("audit: key file %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	bad := func(why string) error {
		return fmt.Errorf("audit: key file %s: %s; restore it from the relay that created it or from a backup", path, why)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	anchor = -1
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "key":
			key, err = hex.DecodeString(v)
			if err != nil || len(key) != 32 {
				return nil, 0, bad("the key is not 64 hex digits")
			}
		case "anchor":
			anchor, err = strconv.ParseInt(v, 10, 64)
			if err != nil || anchor < 0 {
				return nil, 0, bad("the anchor is not a record number")
			}
		default:
			return nil, 0, bad(fmt.Sprintf("unknown line %q", k))
		}
	}
	if key == nil || anchor < 0 {
		return nil, 0, bad("it needs a key line and an anchor line")
	}
	return key, anchor, nil
}
