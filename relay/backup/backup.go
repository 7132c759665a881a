// Package backup writes a relay's state into one archive and restores it
// into a data directory (docs/adr/0030-backup-and-restore.md).
//
// An archive is a gzip-compressed tar, encrypted with age to a passphrase
// when one is given (scrypt recipient). It holds, as plain names at its top
// level:
//
//   - deskside.db: a consistent snapshot of the embedded SQLite database
//     (sqlite.Snapshot, VACUUM INTO), taken while the relay runs; absent
//     when the relay uses PostgreSQL, whose database is backed up with
//     pg_dump;
//   - every other regular file at the top of the data directory: the CA
//     and its key, a staged and the previous CAs, the server certificate
//     and key, the audit key (also when --audit-key keeps it elsewhere);
//   - manifest.json, last: the format version, when and by which relay
//     version it was written, the database kind and schema version, and
//     each file's size and SHA-256.
//
// Restore checks the whole archive against its manifest in a staging
// directory before it moves anything into place.
package backup

import (
	"archive/tar"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/klauspost/compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/deskside/deskside/internal/atomicfile"
	"github.com/deskside/deskside/relay/audit"
	"github.com/deskside/deskside/relay/service"
	"github.com/deskside/deskside/relay/store/sqlite"
)

// FormatVersion is the archive format this package writes and the newest
// it restores.
const FormatVersion = 1

// ManifestName is the manifest's name in an archive.
const ManifestName = "manifest.json"

// Database kinds in a manifest.
const (
	DatabaseSQLite   = "sqlite"
	DatabasePostgres = "postgresql"
)

// Manifest describes an archive.
type Manifest struct {
	Format       int       `json:"format"`
	CreatedAt    time.Time `json:"created_at"`
	RelayVersion string    `json:"relay_version"`
	// Database is DatabaseSQLite (the snapshot is the file
	// service.SQLiteFile) or DatabasePostgres (no database in the archive).
	Database string `json:"database"`
	// SchemaVersion is the SQLite snapshot's schema version.
	SchemaVersion int `json:"schema_version,omitempty"`
	// AuditKeyFrom is where the audit key was read when it was outside
	// the data directory (--audit-key); it is archived as audit.key.
	AuditKeyFrom string `json:"audit_key_from,omitempty"`
	Files        []File `json:"files"`
}

// File is one archived file.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Options configure Create.
type Options struct {
	// DataDir is the relay's data directory (required).
	DataDir string
	// AuditKeyFile is the relay's audit key; default DataDir/audit.key.
	AuditKeyFile string
	// Database is the relay's PostgreSQL URL, or empty for SQLite in
	// DataDir. With PostgreSQL the archive holds no database.
	Database string
	// Output is the archive's path (required). It must not exist and must
	// not be inside DataDir. It is written atomically, mode 0600.
	Output string
	// Passphrase, when not empty, encrypts the archive with age (scrypt).
	Passphrase string
	// ScryptWorkFactor is age's scrypt log2(N); 0 is age's default (18).
	ScryptWorkFactor int
	// RelayVersion goes into the manifest.
	RelayVersion string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *Options) checkAndSetDefaults() error {
	var errs []error
	if o.DataDir == "" {
		errs = append(errs, errors.New("backup: DataDir (--data) is required"))
	}
	if o.Output == "" {
		errs = append(errs, errors.New("backup: Output (--out) is required"))
	}
	if o.AuditKeyFile == "" {
		o.AuditKeyFile = filepath.Join(o.DataDir, audit.KeyFile)
	}
	o.RelayVersion = cmp.Or(o.RelayVersion, "dev")
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(errs) == 0 {
		if inside(o.DataDir, o.Output) {
			errs = append(errs, fmt.Errorf("backup: the archive %s is inside the data directory %s, where the next backup would copy it: write it elsewhere (--out)", o.Output, o.DataDir))
		}
		if _, err := os.Lstat(o.Output); err == nil {
			errs = append(errs, fmt.Errorf("backup: %s already exists: choose another name (--out) or remove it", o.Output))
		}
	}
	return errors.Join(errs...)
}

// Result is what Create wrote.
type Result struct {
	Manifest  Manifest
	Path      string
	Size      int64 // bytes of the archive
	Encrypted bool
}

// Create writes an archive of the relay's state; the relay may be running.
func Create(ctx context.Context, o Options) (Result, error) {
	if err := o.checkAndSetDefaults(); err != nil {
		return Result{}, err
	}
	if fi, err := os.Stat(o.DataDir); err != nil || !fi.IsDir() {
		return Result{}, fmt.Errorf("backup: data directory %s: %w (is --data the relay's data directory?)", o.DataDir, cmp.Or(err, errors.New("not a directory")))
	}
	// The staging directory sits beside the archive: the snapshot may be
	// as large as the database, more than a small /tmp holds.
	stage, err := os.MkdirTemp(filepath.Dir(o.Output), ".deskside-backup-*")
	if err != nil {
		return Result{}, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(stage)

	m := Manifest{Format: FormatVersion, CreatedAt: o.Now().UTC(), RelayVersion: o.RelayVersion, Database: DatabasePostgres}
	// The database first, then the files: the CA files only gain trust
	// over time (a staged CA, a previous one) until a retirement, so files
	// read after the snapshot trust every certificate it records.
	if o.Database == "" {
		m.Database = DatabaseSQLite
		src := filepath.Join(o.DataDir, service.SQLiteFile)
		if m.SchemaVersion, err = sqlite.Snapshot(ctx, src, filepath.Join(stage, service.SQLiteFile)); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return Result{}, fmt.Errorf("backup: %w (is --data the relay's data directory? a relay on PostgreSQL needs --database)", err)
			}
			return Result{}, fmt.Errorf("backup: %w", err)
		}
	}
	names, err := dataFiles(o.DataDir)
	if err != nil {
		return Result{}, err
	}
	for _, n := range names {
		if err := copyFile(filepath.Join(o.DataDir, n), filepath.Join(stage, n)); err != nil {
			return Result{}, fmt.Errorf("backup: %w", err)
		}
	}
	noKey := fmt.Errorf("backup: no audit key at %s: give the relay's --audit-key (env DESKSIDE_AUDIT_KEY); without it a restored relay cannot seal its audit log", o.AuditKeyFile)
	if sameFile(o.AuditKeyFile, filepath.Join(o.DataDir, audit.KeyFile)) {
		if !slices.Contains(names, audit.KeyFile) {
			return Result{}, noKey
		}
	} else {
		// The key the relay uses wins over a stray audit.key in DataDir.
		os.Remove(filepath.Join(stage, audit.KeyFile))
		switch err := copyFile(o.AuditKeyFile, filepath.Join(stage, audit.KeyFile)); {
		case err == nil:
			m.AuditKeyFrom = o.AuditKeyFile
			if abs, err := filepath.Abs(o.AuditKeyFile); err == nil {
				m.AuditKeyFrom = abs
			}
			if !slices.Contains(names, audit.KeyFile) {
				names = append(names, audit.KeyFile)
			}
		case errors.Is(err, os.ErrNotExist):
			return Result{}, noKey
		default:
			return Result{}, fmt.Errorf("backup: %w", err)
		}
	}
	if m.Database == DatabaseSQLite {
		names = append(names, service.SQLiteFile)
	}
	slices.Sort(names)
	for _, n := range names {
		f, err := hashFile(filepath.Join(stage, n))
		if err != nil {
			return Result{}, fmt.Errorf("backup: %w", err)
		}
		f.Name = n
		m.Files = append(m.Files, f)
	}

	err = atomicfile.Write(o.Output, 0o600, func(w io.Writer) error {
		var enc io.WriteCloser
		if o.Passphrase != "" {
			r, err := age.NewScryptRecipient(o.Passphrase)
			if err != nil {
				return err
			}
			if o.ScryptWorkFactor > 0 {
				r.SetWorkFactor(o.ScryptWorkFactor)
			}
			if enc, err = age.Encrypt(w, r); err != nil {
				return err
			}
			w = enc
		}
		if err := writeArchive(ctx, w, stage, m); err != nil {
			return err
		}
		if enc != nil {
			return enc.Close()
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("backup: %w", err)
	}
	fi, err := os.Stat(o.Output)
	if err != nil {
		return Result{}, fmt.Errorf("backup: %w", err)
	}
	return Result{Manifest: m, Path: o.Output, Size: fi.Size(), Encrypted: o.Passphrase != ""}, nil
}

// writeArchive writes the tar.gz of m's files from dir, then the manifest.
func writeArchive(ctx context.Context, w io.Writer, dir string, m Manifest) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	hdr := func(name string, size int64) *tar.Header {
		return &tar.Header{Name: name, Size: size, Mode: 0o600, ModTime: m.CreatedAt, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	}
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr(f.Name, f.Size)); err != nil {
			return err
		}
		src, err := os.Open(filepath.Join(dir, f.Name))
		if err != nil {
			return err
		}
		_, err = io.CopyN(tw, src, f.Size)
		src.Close()
		if err != nil {
			return fmt.Errorf("archive %s: %w", f.Name, err)
		}
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(hdr(ManifestName, int64(len(mb)))); err != nil {
		return err
	}
	if _, err := tw.Write(mb); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// dataFiles lists the regular files at the top of dir that a backup
// copies: all but the SQLite database and its journals (the snapshot
// replaces them) and hidden files (atomicfile's temporaries).
// Subdirectories are not the relay's.
func dataFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(n, ".") || n == ManifestName || isDatabaseFile(n) {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

// isDatabaseFile reports whether name is the SQLite database or one of its
// journals.
func isDatabaseFile(name string) bool {
	switch name {
	case service.SQLiteFile, service.SQLiteFile + "-wal", service.SQLiteFile + "-shm", service.SQLiteFile + "-journal":
		return true
	}
	return false
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

func hashFile(path string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("read %s: %w", path, err)
	}
	return File{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// inside reports whether path lies in dir (lexically, after Abs).
func inside(dir, path string) bool {
	d, err1 := filepath.Abs(dir)
	p, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// sameFile reports whether a and b name one file, or the same path when
// they do not exist.
func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return os.SameFile(fa, fb)
}
