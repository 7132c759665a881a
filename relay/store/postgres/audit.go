package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/relay/store"
)

// AppendAudit implements store.Store: AppendAudits of one event.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent, seal store.AuditSeal) (store.AuditEvent, error) {
	out, err := s.appendAudits(ctx, []store.AuditEvent{e}, seal)
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("postgres: append audit: %w", err)
	}
	return out[0], nil
}

// AppendAudits implements store.Store. Each event's time is normalised to
// what the database stores (Unix nanoseconds, UTC) before sealing, so the
// returned events, the stored ones and a hash recomputed from either
// agree. The first event's PrevHash is "". The strings are stored as
// bytea, so any string, NUL included, is stored and hashed exactly.
//
// Appenders, on this relay or any other, are serialized by a SHARE ROW
// EXCLUSIVE lock on audit_log, taken before the last event is read: the
// lock conflicts with itself and with every writer of the table but not
// with readers. The last event is read after the lock is granted, in a new
// snapshot (READ COMMITTED), so it is the one the previous holder
// committed. The chain therefore never forks; were the lock ever missed,
// the primary key on seq and the unique prev_hash would refuse the fork.
// The events go in with one INSERT of unnest()ed arrays: one lock, one
// read and one statement whatever their number.
func (s *Store) AppendAudits(ctx context.Context, events []store.AuditEvent, seal store.AuditSeal) ([]store.AuditEvent, error) {
	out, err := s.appendAudits(ctx, events, seal)
	if err != nil {
		return nil, fmt.Errorf("postgres: append audits: %w", err)
	}
	return out, nil
}

func (s *Store) appendAudits(ctx context.Context, events []store.AuditEvent, seal store.AuditSeal) ([]store.AuditEvent, error) {
	if seal == nil {
		return nil, errors.New("no seal (the relay's audit key, package relay/audit)")
	}
	if len(events) == 0 {
		return nil, nil
	}
	in := make([]store.AuditEvent, len(events))
	for i, e := range events {
		e.Time = store.FromNanos(store.Nanos(e.Time))
		in[i] = e
	}
	var (
		out                           = make([]store.AuditEvent, len(in))
		seqs, times                   = make([]int64, len(in)), make([]int64, len(in))
		actor, action, target, detail = make([][]byte, len(in)), make([][]byte, len(in)), make([][]byte, len(in)), make([][]byte, len(in))
		prevs, hashes                 = make([]string, len(in)), make([]string, len(in))
	)
	err := s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		var (
			last int64
			prev string
		)
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		for i, e := range in {
			e.Seq, e.PrevHash = last+1+int64(i), prev
			e.Hash = seal(prev, e)
			prev, out[i] = e.Hash, e
			seqs[i], times[i], prevs[i], hashes[i] = e.Seq, store.Nanos(e.Time), e.PrevHash, e.Hash
			actor[i], action[i], target[i], detail[i] = []byte(e.Actor), []byte(e.Action), []byte(e.Target), []byte(e.Detail)
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit_log (seq, time, actor, action, target, detail, prev_hash, hash)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[], $5::bytea[], $6::bytea[], $7::text[], $8::text[])`,
			seqs, times, actor, action, target, detail, prevs, hashes)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListAudit implements store.Store. Each filter is an indexed column
// (migration 0007); the action prefix is a byte range on the action index.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var (
		where []string
		args  []any
	)
	add := func(cond string, a any) {
		args = append(args, a)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Actor != "" {
		add("actor = $%d", []byte(f.Actor))
	}
	if f.Target != "" {
		add("target = $%d", []byte(f.Target))
	}
	if p, prefix := f.ActionPrefix(); !prefix && p != "" {
		add("action = $%d", []byte(p))
	} else if prefix && p != "" {
		add("action >= $%d", []byte(p))
		if end := store.PrefixEnd(p); end != "" {
			add("action < $%d", []byte(end))
		}
	}
	if !f.Since.IsZero() {
		add("time >= $%d", store.Nanos(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < $%d", store.Nanos(f.Until))
	}
	if f.Before > 0 {
		add("seq < $%d", f.Before)
	}
	q := `SELECT seq, time, actor, action, target, detail, prev_hash, hash FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limitArg(f.Limit))
	q += fmt.Sprintf(" ORDER BY seq DESC LIMIT $%d", len(args))
	out, err := s.queryAudit(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit: %w", err)
	}
	return out, nil
}

// ScanAudit implements store.Store.
func (s *Store) ScanAudit(ctx context.Context, after int64, limit int) ([]store.AuditEvent, error) {
	out, err := s.queryAudit(ctx, `SELECT seq, time, actor, action, target, detail, prev_hash, hash
		FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: scan audit: %w", err)
	}
	return out, nil
}

func (s *Store) queryAudit(ctx context.Context, q string, args ...any) ([]store.AuditEvent, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditEvent, error) {
		var (
			e                             store.AuditEvent
			t                             int64
			actor, action, target, detail []byte
		)
		err := r.Scan(&e.Seq, &t, &actor, &action, &target, &detail, &e.PrevHash, &e.Hash)
		e.Time = store.FromNanos(t)
		e.Actor, e.Action, e.Target, e.Detail = string(actor), string(action), string(target), string(detail)
		return e, err
	})
}
