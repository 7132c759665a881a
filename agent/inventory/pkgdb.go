package inventory

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"io"
	"slices"
	"strings"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// Software sources reported in desksidev1.Software.source.
const (
	SourceDpkg = "dpkg"
	SourceRPM  = "rpm"
)

// maxLineBytes bounds one line of a package database; longer lines (huge
// descriptions) are truncated, which only ever affects fields we ignore.
const maxLineBytes = 64 << 10

// maxPackages bounds how many packages one database may yield, whatever it
// claims; the wire cap (smaller) is applied later.
const maxPackages = 200_000

// lineReader yields lines without their end-of-line bytes, truncating any
// line longer than maxLineBytes instead of failing.
type lineReader struct {
	br *bufio.Reader
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, maxLineBytes)}
}

// next returns the next line, or io.EOF after the last one. The returned
// slice is only valid until the next call.
func (l *lineReader) next() ([]byte, error) {
	line, err := l.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		// Keep the head of the line, skip the rest.
		head := bytes.Clone(line)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = l.br.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return head, nil
	case errors.Is(err, io.EOF):
		if len(line) == 0 {
			return nil, io.EOF
		}
		return bytes.TrimRight(line, "\r"), nil
	case err != nil:
		return nil, err
	}
	return bytes.TrimRight(line[:len(line)-1], "\r"), nil
}

// dpkgEntry is one stanza of the dpkg status database.
type dpkgEntry struct {
	name, version, arch, status string
}

// installed reports whether a dpkg Status value ("want flag status") means
// the package is on disk and configured. The want part is ignored, so held
// ("hold ok installed") and to-be-removed packages still count;
// "triggers-pending" and "triggers-awaited" are installed packages waiting
// for another package's trigger.
func (e dpkgEntry) installed() bool {
	f := strings.Fields(e.status)
	if len(f) != 3 {
		return false
	}
	switch f[2] {
	case "installed", "triggers-pending", "triggers-awaited":
		return true
	}
	return false
}

// parseDpkgStatus parses a dpkg status database (/var/lib/dpkg/status, a
// deb822 file) and returns the installed packages sorted by name. It never
// fails on malformed content (bad stanzas are skipped); only a read error is
// returned, together with what was parsed before it.
func parseDpkgStatus(r io.Reader) ([]*desksidev1.Software, error) {
	var (
		entries []dpkgEntry
		cur     dpkgEntry
	)
	flush := func() {
		if cur.name != "" && cur.installed() && len(entries) < maxPackages {
			entries = append(entries, cur)
		}
		cur = dpkgEntry{}
	}
	lr := newLineReader(r)
	var readErr error
	for {
		line, err := lr.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		if len(bytes.TrimSpace(line)) == 0 {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a multi-line field we do not use
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			continue
		}
		key := string(bytes.TrimSpace(line[:i]))
		val := string(bytes.TrimSpace(line[i+1:]))
		switch {
		case strings.EqualFold(key, "Package"):
			cur.name = clean(val)
		case strings.EqualFold(key, "Version"):
			cur.version = clean(val)
		case strings.EqualFold(key, "Architecture"):
			cur.arch = clean(val)
		case strings.EqualFold(key, "Status"):
			cur.status = val
		}
	}
	flush()

	// Qualify names installed for more than one architecture, as dpkg -l
	// does ("libc6:amd64", "libc6:i386"), so every name stays unique.
	archs := make(map[string]map[string]bool, len(entries))
	for _, e := range entries {
		if archs[e.name] == nil {
			archs[e.name] = map[string]bool{}
		}
		archs[e.name][e.arch] = true
	}
	out := make([]*desksidev1.Software, 0, len(entries))
	for _, e := range entries {
		name := e.name
		if len(archs[name]) > 1 && e.arch != "" {
			name += ":" + e.arch
		}
		out = append(out, &desksidev1.Software{Name: name, Version: e.version, Source: SourceDpkg})
	}
	sortSoftware(out)
	out = slices.CompactFunc(out, func(a, b *desksidev1.Software) bool {
		return a.Name == b.Name && a.Version == b.Version && a.Source == b.Source
	})
	return out, readErr
}

// RPMQueryFormat is the --qf argument given to rpm -qa; parseRPMList
// parses its output.
const RPMQueryFormat = "%{NAME}\t%{VERSION}-%{RELEASE}\n"

// parseRPMList parses the output of rpm -qa --qf RPMQueryFormat.
func parseRPMList(r io.Reader) ([]*desksidev1.Software, error) {
	var out []*desksidev1.Software
	lr := newLineReader(r)
	for len(out) < maxPackages {
		line, err := lr.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			sortSoftware(out)
			return out, err
		}
		name, version, _ := bytes.Cut(line, []byte{'\t'})
		n := clean(string(name))
		if n == "" || n == "gpg-pubkey" {
			continue
		}
		out = append(out, &desksidev1.Software{Name: n, Version: clean(string(version)), Source: SourceRPM})
	}
	sortSoftware(out)
	out = slices.CompactFunc(out, func(a, b *desksidev1.Software) bool {
		return a.Name == b.Name && a.Version == b.Version && a.Source == b.Source
	})
	return out, nil
}

func sortSoftware(s []*desksidev1.Software) {
	slices.SortFunc(s, func(a, b *desksidev1.Software) int {
		return cmp.Or(
			cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Source, b.Source),
			cmp.Compare(a.Version, b.Version),
		)
	})
}
