package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/deskside/deskside/relay/store"
)

// AppendAudit implements store.Store: AppendAudits of one event.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent, seal store.AuditSeal) (store.AuditEvent, error) {
	out, err := s.appendAudits(ctx, []store.AuditEvent{e}, seal)
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("sqlite: append audit: %w", err)
	}
	return out[0], nil
}

// AppendAudits implements store.Store. Each event's time is normalised to
// what the database stores (Unix nanoseconds, UTC) before sealing, so the
// returned events, the stored ones and a hash recomputed from either
// agree. The first event's PrevHash is "". The events go in through one
// prepared INSERT in the one write transaction (SQLite's single writer
// serializes appenders).
func (s *Store) AppendAudits(ctx context.Context, events []store.AuditEvent, seal store.AuditSeal) ([]store.AuditEvent, error) {
	out, err := s.appendAudits(ctx, events, seal)
	if err != nil {
		return nil, fmt.Errorf("sqlite: append audits: %w", err)
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
	out := make([]store.AuditEvent, len(events))
	err := s.write(ctx, func(tx *sql.Tx) error {
		var (
			last int64
			prev string
		)
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO audit_log (seq, time, actor, action, target, detail, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for i, e := range events {
			e.Time = store.FromNanos(store.Nanos(e.Time))
			e.Seq, e.PrevHash = last+1+int64(i), prev
			e.Hash = seal(prev, e)
			if _, err := ins.ExecContext(ctx, e.Seq, store.Nanos(e.Time), e.Actor, e.Action, e.Target, e.Detail, e.PrevHash, e.Hash); err != nil {
				return err
			}
			prev, out[i] = e.Hash, e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListAudit implements store.Store. Each filter is an indexed column
// (migration 0010); the action prefix is a range on the action index.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	q, args := auditQuery(f)
	out, err := s.queryAudit(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list audit: %w", err)
	}
	return out, nil
}

// auditQuery is ListAudit's query for a valid filter.
func auditQuery(f store.AuditFilter) (string, []any) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.Target != "" {
		add("target = ?", f.Target)
	}
	if p, prefix := f.ActionPrefix(); !prefix && p != "" {
		add("action = ?", p)
	} else if prefix && p != "" {
		add("action >= ?", p)
		if end := store.PrefixEnd(p); end != "" {
			add("action < ?", end)
		}
	}
	if !f.Since.IsZero() {
		add("time >= ?", store.Nanos(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < ?", store.Nanos(f.Until))
	}
	if f.Before > 0 {
		add("seq < ?", f.Before)
	}
	q := `SELECT seq, time, actor, action, target, detail, prev_hash, hash FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq DESC LIMIT ?"
	return q, append(args, limitArg(f.Limit))
}

// ScanAudit implements store.Store.
func (s *Store) ScanAudit(ctx context.Context, after int64, limit int) ([]store.AuditEvent, error) {
	out, err := s.queryAudit(ctx, `SELECT seq, time, actor, action, target, detail, prev_hash, hash
		FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`, after, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: scan audit: %w", err)
	}
	return out, nil
}

func (s *Store) queryAudit(ctx context.Context, q string, args ...any) ([]store.AuditEvent, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AuditEvent
	for rows.Next() {
		var (
			e store.AuditEvent
			t int64
		)
		if err := rows.Scan(&e.Seq, &t, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		e.Time = store.FromNanos(t)
		out = append(out, e)
	}
	return out, rows.Err()
}
