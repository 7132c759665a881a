package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/audit"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/service"
	"github.com/deskside/deskside/relay/store/sqlite"
)

// entry is one file of an archive as a test rewrites it.
type entry struct {
	name string
	data []byte
}

// readEntries reads an unencrypted archive's entries in order.
func readEntries(t *testing.T, path string) []entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out []entry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{h.Name, b})
	}
}

// writeEntries writes entries as an archive at path.
func writeEntries(t *testing.T, path string, es []entry) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range es {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Size: int64(len(e.data)), Mode: 0o600, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	gz.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rehash returns es with its manifest rewritten by edit and its file
// hashes recomputed, as someone who knows the format would forge it.
func rehash(t *testing.T, es []entry, edit func(*Manifest)) []entry {
	t.Helper()
	var m Manifest
	out := []entry{}
	for _, e := range es {
		if e.name == ManifestName {
			if err := json.Unmarshal(e.data, &m); err != nil {
				t.Fatal(err)
			}
			continue
		}
		out = append(out, e)
	}
	m.Files = nil
	dir := t.TempDir()
	for _, e := range out {
		p := filepath.Join(dir, e.name)
		os.WriteFile(p, e.data, 0o600)
		f, err := hashFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f.Name = e.name
		m.Files = append(m.Files, f)
	}
	if edit != nil {
		edit(&m)
	}
	b, _ := json.Marshal(m)
	return append(out, entry{ManifestName, b})
}

func replace(es []entry, name string, data []byte) []entry {
	out := make([]entry, len(es))
	for i, e := range es {
		if e.name == name {
			e.data = data
		}
		out[i] = e
	}
	return out
}

// TestRestoreRefuses restores archives that are damaged, changed or newer
// than this relay: each is refused with the named error, and nothing is
// left in the data directory.
func TestRestoreRefuses(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	r.Enroll(t, "refuse-host")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tar.gz")
	if _, err := Create(t.Context(), Options{DataDir: r.Dir, Output: good}); err != nil {
		t.Fatal(err)
	}
	enc := filepath.Join(dir, "good.tar.gz.age")
	if _, err := Create(t.Context(), Options{DataDir: r.Dir, Output: enc, Passphrase: "pass", ScryptWorkFactor: 10}); err != nil {
		t.Fatal(err)
	}
	es := readEntries(t, good)
	if last := es[len(es)-1].name; last != ManifestName {
		t.Fatalf("the archive ends with %s, want the manifest", last)
	}
	raw, _ := os.ReadFile(good)
	rawEnc, _ := os.ReadFile(enc)
	flip := func(b []byte, at int) []byte {
		c := bytes.Clone(b)
		c[at] ^= 0x01
		return c
	}
	ca := func() []byte {
		for _, e := range es {
			if e.name == "ca.pem" {
				return e.data
			}
		}
		t.Fatal("no ca.pem in the archive")
		return nil
	}()

	// A database at a schema this binary does not know yet.
	newerDB := func() []byte {
		p := filepath.Join(t.TempDir(), "db")
		for _, e := range es {
			if e.name == service.SQLiteFile {
				os.WriteFile(p, e.data, 0o600)
			}
		}
		db, err := sql.Open("sqlite", p)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future.sql', 0)`, sqlite.KnownSchemaVersion()+1); err != nil {
			t.Fatal(err)
		}
		db.Close()
		b, _ := os.ReadFile(p)
		return b
	}()

	for _, tc := range []struct {
		name  string
		write func(path string)
		pass  string
		want  error
		text  string
	}{
		{"changed file, manifest kept", func(p string) {
			writeEntries(t, p, replace(es, "ca.pem", append(bytes.Clone(ca), '\n')))
		}, "", ErrDamaged, "ca.pem does not match"},
		{"file not in the manifest", func(p string) {
			writeEntries(t, p, append([]entry{{"extra.pem", []byte("x")}}, es...))
		}, "", ErrDamaged, "extra.pem is not in the manifest"},
		{"file missing", func(p string) {
			writeEntries(t, p, es[1:])
		}, "", ErrDamaged, "missing"},
		{"path outside the directory", func(p string) {
			writeEntries(t, p, append([]entry{{"../escape.pem", []byte("x")}}, es...))
		}, "", ErrDamaged, "unexpected entry"},
		{"hidden name", func(p string) {
			writeEntries(t, p, append([]entry{{".restore-x", []byte("x")}}, es...))
		}, "", ErrDamaged, "unexpected entry"},
		{"no manifest", func(p string) {
			writeEntries(t, p, es[:len(es)-1])
		}, "", ErrDamaged, "no manifest.json"},
		{"truncated", func(p string) {
			os.WriteFile(p, raw[:len(raw)/2], 0o600)
		}, "", ErrDamaged, ""},
		{"flipped bit in the gzip stream", func(p string) {
			os.WriteFile(p, flip(raw, len(raw)/2), 0o600)
		}, "", ErrDamaged, ""},
		{"not an archive", func(p string) {
			os.WriteFile(p, []byte("hello, this is a text file"), 0o600)
		}, "", ErrDamaged, "neither a gzip nor an age file"},
		{"flipped bit in the encrypted payload", func(p string) {
			os.WriteFile(p, flip(rawEnc, len(rawEnc)-100), 0o600)
		}, "pass", ErrDamaged, ""},
		{"wrong passphrase", func(p string) {
			os.WriteFile(p, rawEnc, 0o600)
		}, "Pass", ErrPassphrase, ""},
		{"newer format", func(p string) {
			writeEntries(t, p, rehash(t, es, func(m *Manifest) { m.Format = FormatVersion + 1 }))
		}, "", ErrTooNew, "archive format"},
		{"newer schema", func(p string) {
			writeEntries(t, p, rehash(t, replace(es, service.SQLiteFile, newerDB), func(m *Manifest) { m.SchemaVersion++ }))
		}, "", ErrTooNew, "schema version"},
		{"schema differs from the manifest", func(p string) {
			writeEntries(t, p, rehash(t, replace(es, service.SQLiteFile, newerDB), nil))
		}, "", ErrDamaged, "the manifest says"},
		{"database that is not one", func(p string) {
			writeEntries(t, p, rehash(t, replace(es, service.SQLiteFile, bytes.Repeat([]byte("not sqlite "), 1000)), nil))
		}, "", ErrDamaged, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "archive")
			tc.write(p)
			data := filepath.Join(t.TempDir(), "data")
			_, err := Restore(t.Context(), RestoreOptions{Archive: p, DataDir: data, Passphrase: tc.pass})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("Restore: %v; want %v with %q", err, tc.want, tc.text)
			}
			if ents, _ := os.ReadDir(data); len(ents) > 0 {
				t.Fatalf("a refused restore left %d entries in the data directory", len(ents))
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(data), "escape.pem")); err == nil {
				t.Fatal("an entry escaped the data directory")
			}
		})
	}

	// The unchanged archives restore.
	for _, p := range []string{good, enc} {
		if _, err := Restore(t.Context(), RestoreOptions{Archive: p, DataDir: filepath.Join(t.TempDir(), "data"), Passphrase: "pass"}); err != nil {
			t.Fatalf("restore %s: %v", filepath.Base(p), err)
		}
	}
}

// TestRestoreForce restores over a data directory that holds a database
// with a stale write-ahead log: without Force it is refused; with it the
// archive's files replace the old ones and the stale journals are gone,
// so the relay does not replay them into the restored database.
func TestRestoreForce(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	archive := filepath.Join(t.TempDir(), "b.tar.gz")
	if _, err := Create(t.Context(), Options{DataDir: r.Dir, Output: archive}); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	for _, n := range []string{service.SQLiteFile, service.SQLiteFile + "-wal", service.SQLiteFile + "-shm", "ca.pem", "unrelated.txt"} {
		os.WriteFile(filepath.Join(data, n), []byte("old "+n), 0o644)
	}
	if _, err := Restore(t.Context(), RestoreOptions{Archive: archive, DataDir: data}); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("restore into a directory with files: %v, want ErrNotEmpty", err)
	}
	m, err := Restore(t.Context(), RestoreOptions{Archive: archive, DataDir: data, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(filepath.Join(data, service.SQLiteFile+j)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale %s left behind (%v)", j, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(data, "ca.pem")); bytes.HasPrefix(b, []byte("old")) {
		t.Error("ca.pem was not replaced")
	}
	if _, err := os.Stat(filepath.Join(data, "unrelated.txt")); err != nil {
		t.Errorf("a file the archive does not hold was removed: %v", err)
	}
	checkModes(t, data, m)
	if v, err := sqlite.FileSchemaVersion(t.Context(), filepath.Join(data, service.SQLiteFile)); err != nil || v != sqlite.KnownSchemaVersion() {
		t.Fatalf("restored database: version %d, %v", v, err)
	}
}

// TestCreateOptions covers what Create refuses and the audit key kept
// outside the data directory.
func TestCreateOptions(t *testing.T) {
	keyDir := t.TempDir()
	key := filepath.Join(keyDir, "relay-audit.key")
	r := servertest.Start(t, servertest.Options{AuditKeyFile: key})
	if _, err := os.Stat(filepath.Join(r.Dir, audit.KeyFile)); err == nil {
		t.Fatal("the relay wrote an audit key into its data directory although it was given another")
	}
	out := filepath.Join(t.TempDir(), "b.tar.gz")

	if _, err := Create(t.Context(), Options{DataDir: r.Dir, Output: filepath.Join(r.Dir, "b.tar.gz")}); err == nil || !strings.Contains(err.Error(), "inside the data directory") {
		t.Errorf("archive inside the data directory: %v", err)
	}
	if _, err := Create(t.Context(), Options{DataDir: r.Dir, Output: out}); err == nil || !strings.Contains(err.Error(), "--audit-key") {
		t.Errorf("backup without the relay's audit key: %v", err)
	}
	if _, err := Create(t.Context(), Options{DataDir: t.TempDir(), Output: out}); err == nil || !strings.Contains(err.Error(), "--database") {
		t.Errorf("backup of a directory without a database: %v", err)
	}
	res, err := Create(t.Context(), Options{DataDir: r.Dir, AuditKeyFile: key, Output: out, Now: func() time.Time { return time.Unix(1e9, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.AuditKeyFrom != key || !res.Manifest.CreatedAt.Equal(time.Unix(1e9, 0)) {
		t.Errorf("manifest: %+v", res.Manifest)
	}
	if _, err := Create(t.Context(), Options{DataDir: r.Dir, AuditKeyFile: key, Output: out}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("backup over an existing archive: %v", err)
	}
	data := filepath.Join(t.TempDir(), "data")
	if _, err := Restore(t.Context(), RestoreOptions{Archive: out, DataDir: data}); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(key)
	if got, _ := os.ReadFile(filepath.Join(data, audit.KeyFile)); !bytes.Equal(got, want) {
		t.Error("the restored audit.key is not the relay's audit key")
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
		t.Errorf("Create left %d entries beside the archive, want only it", len(ents))
	}
}
