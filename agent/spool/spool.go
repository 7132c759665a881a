// Package spool is the agent's bounded on-disk queue of health samples
// waiting for the relay's acknowledgement. Samples are appended to a log
// file as length- and CRC-framed records; a small metadata file holds the
// read position, the next sample id and the count of samples dropped
// because the spool was full. Delivery is at least once: a sample leaves
// the spool only when the relay acknowledged it, and the relay
// de-duplicates by id.
//
// The log file is bounded in bytes too (MaxBytes): while the relay is
// unreachable nothing is acknowledged, so when the file outgrows its cap it
// is compacted to the samples still waiting, and if those alone fill more
// than three quarters of the cap the oldest are dropped first; a log line
// says what was dropped. Dropped samples are counted, and the relay is told.
//
// When the disk refuses a write (full, read-only) the sample is kept in
// memory instead, within the same bound, so nothing is lost while the
// agent runs.
package spool

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/internal/atomicfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const (
	logName  = "health.log"
	metaName = "health.meta"
	// DefaultMax is the default bound: a week of 15-second samples.
	DefaultMax = 7 * 24 * 60 * 4
	// DefaultMaxBytes is the default bound of the log file.
	DefaultMaxBytes = 64 << 20
	maxRecord       = 1 << 20
	compactAt       = 1 << 20
)

// ErrClosed is returned after Close.
var ErrClosed = errors.New("spool: closed")

type item struct {
	id   uint64
	off  int64  // offset of the record in the log, -1 when held in memory
	size int    // payload length
	mem  []byte // payload when the disk refused it
}

type meta struct {
	Head    int64  `json:"head"`
	NextID  uint64 `json:"next_id"`
	Dropped uint64 `json:"dropped"`
}

// Spool is safe for concurrent use.
type Spool struct {
	mu       sync.Mutex
	dir      string
	max      int
	maxBytes int64
	log      *slog.Logger
	// capDropped counts samples dropped by the item cap since the last
	// log line about drops.
	capDropped uint64
	f          *os.File
	size       int64
	meta       meta
	items      []item
	closed     bool
	notify     chan struct{}
	// WriteErr is the last disk error, cleared by a successful write.
	writeErr error
}

// Options configure OpenWith.
type Options struct {
	// MaxItems is the most samples kept (oldest dropped first); default
	// DefaultMax.
	MaxItems int
	// MaxBytes bounds the log file; default DefaultMaxBytes, at least 64 KiB.
	MaxBytes int64
	// Logger gets a line whenever samples are dropped; default none.
	Logger *slog.Logger
}

// Open opens (or creates) the spool in dir, keeping at most max samples
// (oldest dropped first); max <= 0 means DefaultMax. The file is bounded
// by DefaultMaxBytes.
func Open(dir string, max int) (*Spool, error) {
	return OpenWith(dir, Options{MaxItems: max})
}

// OpenWith opens (or creates) the spool in dir with o's bounds.
func OpenWith(dir string, o Options) (*Spool, error) {
	max := o.MaxItems
	if max <= 0 {
		max = DefaultMax
	}
	maxBytes := o.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if maxBytes < 64<<10 {
		maxBytes = 64 << 10
	}
	lg := o.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{dir: dir, max: max, maxBytes: maxBytes, log: lg, notify: make(chan struct{}, 1)}
	if b, err := os.ReadFile(filepath.Join(dir, metaName)); err == nil {
		if err := json.Unmarshal(b, &s.meta); err != nil {
			s.meta = meta{} // corrupt metadata: replay the whole log; the relay de-duplicates
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("spool: read metadata: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, logName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: open log: %w", err)
	}
	s.f = f
	if err := s.scan(); err != nil {
		f.Close()
		return nil, err
	}
	if s.meta.NextID == 0 {
		s.meta.NextID = 1
	}
	for len(s.items) > s.max {
		s.items = s.items[1:]
		s.meta.Dropped++
		s.capDropped++
	}
	s.advanceHead()
	if s.size > s.maxBytes {
		s.bound()
	}
	return s, nil
}

// scan rebuilds the index from the head; a torn or corrupt tail (a crash
// mid-write) is cut off.
func (s *Spool) scan() error {
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if s.meta.Head > fi.Size() || s.meta.Head < 0 {
		s.meta.Head = 0
	}
	r := bufio.NewReader(io.NewSectionReader(s.f, s.meta.Head, fi.Size()-s.meta.Head))
	off := s.meta.Head
	var hdr [12]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break
		}
		n := binary.BigEndian.Uint32(hdr[0:4])
		sum := binary.BigEndian.Uint32(hdr[4:8])
		if n > maxRecord {
			break
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil || crc32.ChecksumIEEE(buf) != sum {
			break
		}
		id := binary.BigEndian.Uint64(buf[0:8])
		s.items = append(s.items, item{id: id, off: off, size: int(n)})
		if id >= s.meta.NextID {
			s.meta.NextID = id + 1
		}
		off += 12 + int64(n)
	}
	if off < fi.Size() {
		if err := s.f.Truncate(off); err != nil {
			return fmt.Errorf("spool: cut torn tail: %w", err)
		}
	}
	s.size = off
	return nil
}

// Append assigns the next id to sample, stores it and returns the id.
// A disk error is returned for reporting, but the sample is kept in memory
// and will still be delivered.
func (s *Spool) Append(sample *desksidev1.HealthSample) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	id := s.meta.NextID
	s.meta.NextID++
	sample.Id = id
	data, err := proto.Marshal(sample)
	if err != nil {
		return 0, fmt.Errorf("spool: encode sample: %w", err)
	}
	payload := make([]byte, 8+len(data))
	binary.BigEndian.PutUint64(payload, id)
	copy(payload[8:], data)
	it := item{id: id, off: -1, size: len(payload)}
	var werr error
	if s.writeErr == nil || s.retryDisk() {
		rec := make([]byte, 12+len(payload))
		binary.BigEndian.PutUint32(rec[0:4], uint32(len(payload)))
		binary.BigEndian.PutUint32(rec[4:8], crc32.ChecksumIEEE(payload))
		copy(rec[12:], payload)
		if _, err := s.f.WriteAt(rec, s.size); err != nil {
			werr = fmt.Errorf("spool: write (kept in memory): %w", err)
			s.writeErr = werr
			s.f.Truncate(s.size) // drop any partial record
		} else {
			it.off = s.size
			s.size += int64(len(rec))
		}
	}
	if it.off < 0 {
		it.mem = payload
		if werr == nil {
			werr = s.writeErr
		}
	}
	s.items = append(s.items, it)
	if len(s.items) > s.max {
		s.items[0] = item{}
		s.items = s.items[1:]
		s.meta.Dropped++
		s.capDropped++
		s.advanceHead()
	}
	if s.size > s.maxBytes {
		s.bound()
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return id, werr
}

// bound brings the log file back under its byte cap: the log is compacted
// to the samples still waiting, and only if those alone exceed the cap
// are the oldest dropped, down to three quarters of it (so that the next
// compaction is a quarter of the cap away rather than one sample). A
// failed compaction drops nothing and sends new samples to memory (within
// the item cap) until the disk works again.
func (s *Spool) bound() {
	before := s.size
	if err := s.compact(); err != nil {
		s.writeErr = fmt.Errorf("spool: log over its %d-byte cap and compaction failed (kept in memory): %w", s.maxBytes, err)
		s.log.Error("spool: log file over its byte cap and could not be compacted; keeping new samples in memory",
			"bytes", before, "max_bytes", s.maxBytes, "err", err)
		return
	}
	var dropped int
	var first, last uint64
	for len(s.items) > 1 && s.size-s.meta.Head > s.maxBytes*3/4 && (dropped > 0 || s.size-s.meta.Head > s.maxBytes) {
		if dropped == 0 {
			first = s.items[0].id
		}
		last = s.items[0].id
		dropped++
		s.items[0] = item{}
		s.items = s.items[1:]
		s.meta.Dropped++
		s.advanceHead()
	}
	// Still over the cap (the waiting samples alone were): drop the
	// dropped ones from the file too.
	if s.size > s.maxBytes {
		if err := s.compact(); err != nil {
			s.writeErr = fmt.Errorf("spool: log over its %d-byte cap and compaction failed (kept in memory): %w", s.maxBytes, err)
			s.log.Error("spool: log file over its byte cap and could not be compacted; keeping new samples in memory",
				"bytes", s.size, "max_bytes", s.maxBytes, "err", err)
		}
	}
	attrs := []any{"bytes_before", before, "bytes_after", s.size - s.meta.Head, "max_bytes", s.maxBytes, "kept", len(s.items),
		"dropped_by_count_cap", s.capDropped, "dropped_unreported_total", s.meta.Dropped}
	s.capDropped = 0
	if dropped > 0 {
		s.log.Warn("spool: log file over its byte cap; dropped the oldest samples",
			append(attrs, "dropped_oldest", dropped, "dropped_ids", fmt.Sprintf("%d-%d", first, last))...)
	} else {
		s.log.Info("spool: log file over its byte cap; compacted it to the samples still waiting", attrs...)
	}
	s.saveMeta()
}

// retryDisk reports whether the disk may be written again after an error:
// once every in-memory item is gone the log can resume.
func (s *Spool) retryDisk() bool {
	for _, it := range s.items {
		if it.off < 0 {
			return false
		}
	}
	s.writeErr = nil
	return true
}

// Notify is signalled after each Append.
func (s *Spool) Notify() <-chan struct{} { return s.notify }

// Peek returns up to n of the oldest samples without removing them.
func (s *Spool) Peek(n int) ([]*desksidev1.HealthSample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := make([]*desksidev1.HealthSample, 0, min(n, len(s.items)))
	for _, it := range s.items[:min(n, len(s.items))] {
		payload := it.mem
		if it.off >= 0 {
			payload = make([]byte, it.size)
			if _, err := s.f.ReadAt(payload, it.off+12); err != nil {
				return nil, fmt.Errorf("spool: read sample %d: %w", it.id, err)
			}
		}
		m := new(desksidev1.HealthSample)
		if err := proto.Unmarshal(payload[8:], m); err != nil {
			return nil, fmt.Errorf("spool: decode sample %d: %w", it.id, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Len is the number of samples waiting.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

// Issued is how many ids the spool has ever assigned (the last id).
func (s *Spool) Issued() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.meta.NextID - 1
}

// Dropped is the number of samples dropped since the last AckDropped.
func (s *Spool) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.meta.Dropped
}

// Ack removes every sample with an id up to and including upTo, and
// subtracts dropped (the count the acknowledged report carried).
func (s *Spool) Ack(upTo uint64, dropped uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	i := 0
	for i < len(s.items) && s.items[i].id <= upTo {
		i++
	}
	clear(s.items[:i])
	s.items = s.items[i:]
	s.meta.Dropped -= min(dropped, s.meta.Dropped)
	s.advanceHead()
	if len(s.items) == 0 && s.size > 0 {
		// Everything delivered: start the log afresh.
		if err := s.f.Truncate(0); err == nil {
			s.size = 0
			s.meta.Head = 0
		}
	} else if s.meta.Head > compactAt && s.meta.Head > s.size/2 {
		if err := s.compact(); err != nil {
			return err
		}
	}
	return s.saveMeta()
}

func (s *Spool) advanceHead() {
	for _, it := range s.items {
		if it.off >= 0 {
			s.meta.Head = it.off
			return
		}
	}
	s.meta.Head = s.size
}

// compact rewrites the live part of the log into a new file.
func (s *Spool) compact() error {
	tmp := filepath.Join(s.dir, logName+".tmp")
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: compact: %w", err)
	}
	if _, err := io.Copy(nf, io.NewSectionReader(s.f, s.meta.Head, s.size-s.meta.Head)); err != nil {
		nf.Close()
		os.Remove(tmp)
		return fmt.Errorf("spool: compact: %w", err)
	}
	if err := nf.Sync(); err != nil {
		nf.Close()
		os.Remove(tmp)
		return fmt.Errorf("spool: compact: %w", err)
	}
	shift := s.meta.Head
	old := s.meta
	s.meta.Head = 0
	if err := s.saveMeta(); err != nil {
		s.meta = old
		nf.Close()
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, logName)); err != nil {
		s.meta = old
		s.saveMeta()
		nf.Close()
		return fmt.Errorf("spool: compact: %w", err)
	}
	s.f.Close()
	s.f = nf
	s.size -= shift
	for i := range s.items {
		if s.items[i].off >= 0 {
			s.items[i].off -= shift
		}
	}
	return nil
}

func (s *Spool) saveMeta() error {
	b, _ := json.Marshal(s.meta)
	if err := atomicfile.WriteFile(filepath.Join(s.dir, metaName), b, 0o600); err != nil {
		return fmt.Errorf("spool: save metadata: %w", err)
	}
	return nil
}

// Close flushes metadata and closes the log.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.saveMeta()
	return errors.Join(err, s.f.Close())
}
