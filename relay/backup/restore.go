package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
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
	"strings"

	"filippo.io/age"

	"github.com/deskside/deskside/relay/service"
	"github.com/deskside/deskside/relay/store/sqlite"
)

// ageHeader starts every age file.
const ageHeader = "age-encryption.org/v1\n"

// maxManifest bounds the manifest read into memory.
const maxManifest = 1 << 20

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// Archive is the archive's path (required).
	Archive string
	// DataDir is the data directory to restore into (required). It must
	// be empty or absent unless Force is set.
	DataDir string
	// Force restores into a data directory that holds files: the archive's
	// files replace theirs, and a SQLite database's stale journals (-wal,
	// -shm) are removed. Other files stay.
	Force bool
	// Passphrase decrypts an encrypted archive.
	Passphrase string
}

// Restore checks the archive at o.Archive against its manifest and, only
// when all of it is whole, moves its files into o.DataDir (directory 0700,
// files 0600). It returns the archive's manifest.
func Restore(ctx context.Context, o RestoreOptions) (Manifest, error) {
	if o.Archive == "" || o.DataDir == "" {
		return Manifest{}, errors.New("backup: restore needs an archive and a data directory (--data)")
	}
	if !o.Force {
		switch ents, err := os.ReadDir(o.DataDir); {
		case err == nil && len(ents) > 0:
			return Manifest{}, fmt.Errorf("%w: %s holds %d entries; restore into an empty directory, or add --force to replace the files the archive holds (stop the relay using it first)",
				ErrNotEmpty, o.DataDir, len(ents))
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return Manifest{}, fmt.Errorf("backup: %w", err)
		}
	}
	f, err := os.Open(o.Archive)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	r, err := decrypt(bufio.NewReader(f), o.Passphrase)
	if err != nil {
		return Manifest{}, err
	}

	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	if err := os.Chmod(o.DataDir, 0o700); err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	// Staged inside the data directory, so that installing is a rename.
	stage, err := os.MkdirTemp(o.DataDir, ".restore-*")
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(stage)

	m, got, err := extract(ctx, r, stage)
	if err != nil {
		return Manifest{}, err
	}
	if err := check(ctx, m, got, stage); err != nil {
		return Manifest{}, err
	}
	if o.Force && m.Database == DatabaseSQLite {
		for _, j := range []string{"-wal", "-shm", "-journal"} {
			if err := os.Remove(filepath.Join(o.DataDir, service.SQLiteFile+j)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return Manifest{}, fmt.Errorf("backup: %w", err)
			}
		}
	}
	for _, fl := range m.Files {
		if err := os.Rename(filepath.Join(stage, fl.Name), filepath.Join(o.DataDir, fl.Name)); err != nil {
			return Manifest{}, fmt.Errorf("backup: %w", err)
		}
	}
	if d, err := os.Open(o.DataDir); err == nil {
		d.Sync()
		d.Close()
	}
	return m, nil
}

// decrypt returns the archive's tar.gz stream: through age when it is
// encrypted.
func decrypt(br *bufio.Reader, passphrase string) (io.Reader, error) {
	head, _ := br.Peek(len(ageHeader))
	if string(head) != ageHeader {
		if len(head) < 2 || head[0] != 0x1f || head[1] != 0x8b {
			return nil, fmt.Errorf("%w: it is neither a gzip nor an age file (is it a Deskside backup?)", ErrDamaged)
		}
		return br, nil
	}
	if passphrase == "" {
		return nil, ErrEncrypted
	}
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	r, err := age.Decrypt(br, id)
	switch {
	case errors.Is(err, age.ErrIncorrectIdentity):
		return nil, ErrPassphrase
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	return r, nil
}

// extract writes the archive's files into dir, hashing them, and returns
// its manifest and what it found. Only plain names of regular files are
// accepted, each once.
func extract(ctx context.Context, r io.Reader, dir string) (Manifest, map[string]File, error) {
	damaged := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrDamaged, fmt.Sprintf(format, a...))
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return Manifest{}, nil, damaged("%v", err)
	}
	tr := tar.NewReader(gz)
	got := map[string]File{}
	var mraw []byte
	for {
		if err := ctx.Err(); err != nil {
			return Manifest{}, nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Manifest{}, nil, damaged("%v", err)
		}
		name := h.Name
		if h.Typeflag != tar.TypeReg || name == "" || name != filepath.Base(name) || strings.ContainsAny(name, `/\`) || name == "." || name == ".." || strings.HasPrefix(name, ".") {
			return Manifest{}, nil, damaged("unexpected entry %q", name)
		}
		if _, dup := got[name]; dup || (name == ManifestName && mraw != nil) {
			return Manifest{}, nil, damaged("%q appears twice", name)
		}
		if name == ManifestName {
			if mraw, err = io.ReadAll(io.LimitReader(tr, maxManifest+1)); err != nil {
				return Manifest{}, nil, damaged("%v", err)
			}
			if len(mraw) > maxManifest {
				return Manifest{}, nil, damaged("manifest over %d bytes", maxManifest)
			}
			continue
		}
		fl, err := writeHashed(filepath.Join(dir, name), archiveReader{tr})
		switch {
		case errors.Is(err, ErrDamaged):
			return Manifest{}, nil, fmt.Errorf("%w (in %s)", err, name)
		case err != nil:
			return Manifest{}, nil, fmt.Errorf("backup: %w", err)
		}
		fl.Name = name
		got[name] = fl
	}
	if mraw == nil {
		return Manifest{}, nil, damaged("no %s (is it a Deskside backup, and whole?)", ManifestName)
	}
	var m Manifest
	if err := json.NewDecoder(bytes.NewReader(mraw)).Decode(&m); err != nil {
		return Manifest{}, nil, damaged("manifest: %v", err)
	}
	return m, got, nil
}

// check compares what extract found with the manifest, and the SQLite
// snapshot's schema with this binary's.
func check(ctx context.Context, m Manifest, got map[string]File, dir string) error {
	if m.Format > FormatVersion || m.Format < 1 {
		return fmt.Errorf("%w: archive format %d, this relay restores up to %d: restore with the relay version that wrote it (%s) or a newer one",
			ErrTooNew, m.Format, FormatVersion, m.RelayVersion)
	}
	if m.Database != DatabaseSQLite && m.Database != DatabasePostgres {
		return fmt.Errorf("%w: unknown database kind %q in the manifest", ErrDamaged, m.Database)
	}
	listed := map[string]bool{}
	for _, want := range m.Files {
		listed[want.Name] = true
		have, ok := got[want.Name]
		switch {
		case !ok:
			return fmt.Errorf("%w: %s is listed in the manifest but missing", ErrDamaged, want.Name)
		case have.Size != want.Size || have.SHA256 != want.SHA256:
			return fmt.Errorf("%w: %s does not match its SHA-256 in the manifest", ErrDamaged, want.Name)
		}
	}
	for n := range got {
		if !listed[n] {
			return fmt.Errorf("%w: %s is not in the manifest", ErrDamaged, n)
		}
	}
	if m.Database != DatabaseSQLite {
		return nil
	}
	if !listed[service.SQLiteFile] {
		return fmt.Errorf("%w: the manifest says SQLite but the archive holds no %s", ErrDamaged, service.SQLiteFile)
	}
	v, err := sqlite.FileSchemaVersion(ctx, filepath.Join(dir, service.SQLiteFile))
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", ErrDamaged, err)
	case v != m.SchemaVersion:
		return fmt.Errorf("%w: the database is at schema version %d, the manifest says %d", ErrDamaged, v, m.SchemaVersion)
	case v > sqlite.KnownSchemaVersion():
		return fmt.Errorf("%w: its database is at schema version %d, this relay knows up to %d: restore with the relay version that wrote it (%s) or a newer one",
			ErrTooNew, v, sqlite.KnownSchemaVersion(), m.RelayVersion)
	}
	return nil
}

// archiveReader marks errors reading the archive (truncated, corrupt,
// failed authentication) as ErrDamaged, apart from errors writing a file.
type archiveReader struct{ r io.Reader }

func (a archiveReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	return n, err
}

func writeHashed(path string, r io.Reader) (File, error) {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return File{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), r)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return File{}, err
	}
	return File{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
