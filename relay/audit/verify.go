package audit

import (
	"context"
	"crypto/hmac"
	"fmt"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// Kinds of tampering Verify names.
const (
	KindEdited    = "edited"
	KindDeleted   = "deleted"
	KindReordered = "reordered"
	KindInserted  = "inserted"
)

// Problem is the first record that does not verify.
type Problem struct {
	// Seq is the record's number (for a deletion, the first missing one).
	Seq int64
	// Time is the record's time as stored (for a deletion, the time of
	// the record after the gap, zero when the end is missing).
	Time time.Time
	// Kind is KindEdited, KindDeleted, KindReordered or KindInserted.
	Kind string
	// Detail says what does not match.
	Detail string
}

func (p *Problem) String() string {
	return fmt.Sprintf("record %d %s: %s", p.Seq, p.Kind, p.Detail)
}

// Report is what Verify found.
type Report struct {
	// Checked counts the records that verified.
	Checked int64
	// Unkeyed counts those before the anchor (unkeyed SHA-256 chain).
	Unkeyed int64
	// Anchor is the first keyed record; KeyID names the key.
	Anchor int64
	KeyID  string
	// Last is the newest record seen (zero Seq for an empty log).
	Last store.AuditEvent
	// Bad is the first record that does not verify, nil if none.
	Bad *Problem
}

// Progress is called after each page with the records checked so far.
type Progress func(checked int64, last store.AuditEvent)

// PageSize is how many records Verify reads at a time.
const PageSize = 1000

// Verify walks the whole log oldest first, PageSize records at a time, and
// stops at the first record that does not verify. Records before the
// anchor are checked against the unkeyed chain (store.AuditHash), the
// anchor and every record after it against the key. The kind of a bad
// record is read from its neighbours: a gap in the numbers is a deletion;
// a record whose link to the one before is broken but that the next record
// links to in place of it was swapped (reordered), otherwise something
// before it was deleted; a record whose seal does not match its fields
// was inserted when the next record links over it, else edited (or
// rewritten without the key, from it on).
func (l *Log) Verify(ctx context.Context, progress Progress) (Report, error) {
	r := Report{Anchor: l.anchor, KeyID: l.KeyID()}
	var (
		page    []store.AuditEvent
		after   int64
		done    bool
		prevSeq int64
		prev    string
	)
	// fill keeps the current record and the one after it in page,
	// reading the next page when the current one runs out.
	fill := func() error {
		if len(page) > 1 || done {
			return nil
		}
		more, err := l.st.ScanAudit(ctx, after, PageSize)
		if err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		if len(more) < PageSize {
			done = true
		}
		if len(more) > 0 {
			after = more[len(more)-1].Seq
		}
		page = append(page, more...)
		return nil
	}
	for {
		if err := fill(); err != nil {
			return r, err
		}
		if len(page) == 0 {
			break
		}
		e := page[0]
		var next *store.AuditEvent
		if len(page) > 1 {
			next = &page[1]
		}
		if p := l.check(prevSeq, prev, e, next); p != nil {
			r.Bad = p
			return r, nil
		}
		r.Checked++
		if e.Seq < l.anchor {
			r.Unkeyed++
		}
		r.Last, prevSeq, prev = e, e.Seq, e.Hash
		page = page[1:]
		if progress != nil && r.Checked%PageSize == 0 {
			progress(r.Checked, r.Last)
		}
		if err := ctx.Err(); err != nil {
			return r, err
		}
	}
	if prevSeq < l.anchor {
		r.Bad = &Problem{Seq: l.anchor, Kind: KindDeleted, Detail: fmt.Sprintf(
			"the keyed chain's anchor (%s) is missing: the log ends at record %d, so records from %d on were deleted", ActionRekeyed, prevSeq, l.anchor)}
	}
	return r, nil
}

// check verifies e, which follows the record prevSeq whose hash is prev;
// next is the record after e, if any.
func (l *Log) check(prevSeq int64, prev string, e store.AuditEvent, next *store.AuditEvent) *Problem {
	if e.Seq != prevSeq+1 {
		what := fmt.Sprintf("record %d", prevSeq+1)
		if e.Seq > prevSeq+2 {
			what = fmt.Sprintf("records %d–%d", prevSeq+1, e.Seq-1)
		}
		return &Problem{Seq: prevSeq + 1, Time: e.Time, Kind: KindDeleted, Detail: fmt.Sprintf("%s missing before record %d", what, e.Seq)}
	}
	var want string
	if e.Seq < l.anchor {
		want = store.AuditHash(e.PrevHash, e)
	} else {
		want = l.Seal(e.PrevHash, e)
	}
	sealed := hmac.Equal([]byte(want), []byte(e.Hash))
	linked := e.PrevHash == prev
	p := &Problem{Seq: e.Seq, Time: e.Time}
	switch {
	case sealed && linked:
		return nil
	case !linked && next != nil && e.PrevHash == next.Hash:
		p.Kind, p.Detail = KindReordered, fmt.Sprintf("it follows record %d, which comes after it", next.Seq)
	case !linked:
		p.Kind, p.Detail = KindDeleted, fmt.Sprintf("it does not follow record %d: the record it was written after is gone (deleted, or the records renumbered)", prevSeq)
	case next != nil && next.PrevHash == prev:
		p.Kind, p.Detail = KindInserted, fmt.Sprintf("record %d follows record %d directly, so this one was put between them", next.Seq, prevSeq)
	case e.Seq == l.anchor:
		p.Kind, p.Detail = KindEdited, fmt.Sprintf("the keyed chain's anchor (%s) does not match its seal: the log was rewritten without the key at or before it", ActionRekeyed)
	case e.Seq < l.anchor:
		p.Kind, p.Detail = KindEdited, "its fields do not match its (unkeyed) hash"
	default:
		p.Kind, p.Detail = KindEdited, "its fields do not match its seal: changed after it was written, or rewritten without the key"
	}
	return p
}
