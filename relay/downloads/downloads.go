// Package downloads serves the current agent packages for new installs
// from one directory (relay.yaml `downloads`, default DATA/downloads):
// HTTPS GET /download/ lists them, GET /download/NAME sends one. Only
// regular files directly in the directory whose names are package names
// (Served) are listed or sent; nothing else in it, no symbolic link and no
// path is. The directory is read at every request, so files copied in
// (Add, `deskside-relay downloads add`) are served without a restart
// (docs/adr/0034-agent-downloads.md).
package downloads

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// SumsFile lists the SHA-256 of every other file served, in sha256sum's
// format.
const SumsFile = "SHA256SUMS"

// Patterns are the names served, as the listing and errors print them.
const Patterns = "deskside-agent*.deb, deskside-agent*.rpm, deskside-agent*.msi, SHA256SUMS, *.spdx.json, *.release"

// ErrNotServed: the name is not one of Patterns, or names no regular file
// directly in the directory.
var ErrNotServed = errors.New("not an agent package of this relay")

// maxName bounds a served name.
const maxName = 200

// Served reports whether name is a name the relay serves: one of Patterns,
// made of letters, digits and . _ + ~ - only (no path, no hidden file).
func Served(name string) bool {
	if name == "" || len(name) > maxName || name[0] == '.' || name[0] == '-' {
		return false
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._+~-", r)
		if !ok {
			return false
		}
	}
	if strings.Contains(name, "..") {
		return false
	}
	switch {
	case name == SumsFile:
		return true
	case strings.HasSuffix(name, ".spdx.json") && len(name) > len(".spdx.json"):
		return true
	case strings.HasSuffix(name, ".release") && len(name) > len(".release"):
		return true
	case strings.HasPrefix(name, "deskside-agent"):
		ext := filepath.Ext(name)
		return ext == ".deb" || ext == ".rpm" || ext == ".msi"
	}
	return false
}

// ContentType is the media type a served name is sent with.
func ContentType(name string) string {
	switch {
	case name == SumsFile:
		return "text/plain; charset=utf-8"
	case strings.HasSuffix(name, ".spdx.json"):
		return "application/spdx+json"
	case strings.HasSuffix(name, ".deb"):
		return "application/vnd.debian.binary-package"
	case strings.HasSuffix(name, ".rpm"):
		return "application/x-rpm"
	case strings.HasSuffix(name, ".msi"):
		return "application/x-msi"
	}
	return "application/octet-stream"
}

// File is one file served.
type File struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	ModTime time.Time `json:"modified"`
	// Kind is "deb", "rpm", "msi", "sums", "sbom" or "release".
	Kind string `json:"kind"`
}

func kind(name string) string {
	switch {
	case name == SumsFile:
		return "sums"
	case strings.HasSuffix(name, ".spdx.json"):
		return "sbom"
	case strings.HasSuffix(name, ".release"):
		return "release"
	}
	return strings.TrimPrefix(filepath.Ext(name), ".")
}

// Dir is a downloads directory. Its zero value is not usable; it is safe
// for concurrent use.
type Dir struct {
	// Path is the directory; it need not exist (nothing is served then).
	Path string

	mu   sync.Mutex
	sums map[string]cached // name → hash of the version last seen
}

type cached struct {
	size  int64
	mtime time.Time
	sum   string
}

// List returns the files served, by name. A missing directory lists
// nothing.
func (d *Dir) List() ([]File, error) {
	ents, err := os.ReadDir(d.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []File
	seen := map[string]bool{}
	for _, e := range ents {
		if !Served(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		f, err := d.stat(e.Name())
		if err != nil {
			continue // removed or replaced meanwhile
		}
		seen[f.Name] = true
		out = append(out, f)
	}
	d.mu.Lock()
	for n := range d.sums {
		if !seen[n] {
			delete(d.sums, n)
		}
	}
	d.mu.Unlock()
	return out, nil
}

// stat describes name, hashing it unless its size and time are those last
// hashed.
func (d *Dir) stat(name string) (File, error) {
	f, fi, err := d.Open(name)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	sum, err := d.hash(name, f, fi)
	if err != nil {
		return File{}, err
	}
	return File{Name: name, Size: fi.Size(), SHA256: sum, ModTime: fi.ModTime().UTC(), Kind: kind(name)}, nil
}

// hash is the SHA-256 of the open file f, cached by size and time.
func (d *Dir) hash(name string, f *os.File, fi fs.FileInfo) (string, error) {
	d.mu.Lock()
	c, ok := d.sums[name]
	d.mu.Unlock()
	if ok && c.size == fi.Size() && c.mtime.Equal(fi.ModTime()) {
		return c.sum, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, fi.Size())); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	d.mu.Lock()
	if d.sums == nil {
		d.sums = map[string]cached{}
	}
	d.sums[name] = cached{size: fi.Size(), mtime: fi.ModTime(), sum: sum}
	d.mu.Unlock()
	return sum, nil
}

// Open opens the served file name for reading: a name Served accepts, a
// regular file directly in the directory, not a symbolic link. Anything
// else is ErrNotServed.
func (d *Dir) Open(name string) (*os.File, fs.FileInfo, error) {
	if !Served(name) {
		return nil, nil, ErrNotServed
	}
	root, err := os.OpenRoot(d.Path)
	if err != nil {
		return nil, nil, ErrNotServed
	}
	defer root.Close()
	// Lstat, then the opened file's own Stat: a link is refused, and a
	// file swapped for one between the two is caught by comparing them.
	li, err := root.Lstat(name)
	if err != nil || !li.Mode().IsRegular() {
		return nil, nil, ErrNotServed
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, nil, ErrNotServed
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || !os.SameFile(li, fi) {
		f.Close()
		return nil, nil, ErrNotServed
	}
	return f, fi, nil
}

// AddResult says what Add did with each file given.
type AddResult struct {
	Added   []File
	Skipped []string // not a name Served accepts
}

// Add copies files into dir (created 0755 when missing), each written to a
// temporary name, synced, made 0644 and renamed into place, so a running
// relay never serves half a file; files whose names are not served are
// skipped. SHA256SUMS is then rewritten from every served file in dir
// (a SHA256SUMS among files is replaced by it: the relay's list, of the
// same files). It returns what was added, with the hashes.
func Add(dir string, files []string) (*AddResult, error) {
	res := &AddResult{}
	var todo []string
	for _, f := range files {
		name := filepath.Base(f)
		if !Served(name) {
			res.Skipped = append(res.Skipped, f)
			continue
		}
		if name == SumsFile {
			continue // rewritten below
		}
		fi, err := os.Stat(f)
		if err != nil {
			return res, err
		}
		if !fi.Mode().IsRegular() {
			return res, fmt.Errorf("%s is not a regular file", f)
		}
		todo = append(todo, f)
	}
	if len(todo) == 0 && len(res.Skipped) == len(files) {
		return res, fmt.Errorf("no agent package among the files given: the relay serves %s (make packages writes them to dist/, make msi bin/deskside-agent.msi)", Patterns)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	for _, f := range todo {
		if err := copyInto(dir, f); err != nil {
			return res, err
		}
	}
	d := &Dir{Path: dir}
	if err := d.WriteSums(); err != nil {
		return res, err
	}
	list, err := d.List()
	if err != nil {
		return res, err
	}
	for _, f := range todo {
		if i := slices.IndexFunc(list, func(x File) bool { return x.Name == filepath.Base(f) }); i >= 0 {
			res.Added = append(res.Added, list[i])
		}
	}
	return res, nil
}

// WriteSums rewrites SHA256SUMS from the files served in the directory.
func (d *Dir) WriteSums() error {
	list, err := d.List()
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, f := range list {
		if f.Name != SumsFile {
			fmt.Fprintf(&b, "%s  %s\n", f.SHA256, f.Name)
		}
	}
	return writeAtomic(filepath.Join(d.Path, SumsFile), strings.NewReader(b.String()))
}

func copyInto(dir, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeAtomic(filepath.Join(dir, filepath.Base(src)), in)
}

// writeAtomic writes r to path through a temporary file in its directory.
func writeAtomic(path string, r io.Reader) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".add-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, r); err != nil {
		return fmt.Errorf("copy to %s: %w", path, err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// String is "HASH  SIZE  NAME", as `deskside-relay downloads` prints it.
func (f File) String() string {
	return fmt.Sprintf("%s  %9s  %s", f.SHA256, sizeString(f.Size), f.Name)
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
