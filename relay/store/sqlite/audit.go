package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/deskside/deskside/relay/store"
)

// AppendAudit implements store.Store. The event's time is normalised to
// what the database stores (Unix nanoseconds, UTC) before hashing, so the
// returned event, the stored one and a hash recomputed from either agree.
// The first event's PrevHash is "".
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	e.Time = store.FromNanos(store.Nanos(e.Time))
	err := s.write(ctx, func(tx *sql.Tx) error {
		var (
			last int64
			prev string
		)
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		e.Seq, e.PrevHash = last+1, prev
		e.Hash = store.AuditHash(prev, e)
		_, err = tx.ExecContext(ctx, `INSERT INTO audit_log (seq, time, actor, action, target, detail, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, store.Nanos(e.Time), e.Actor, e.Action, e.Target, e.Detail, e.PrevHash, e.Hash)
		return err
	})
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("sqlite: append audit: %w", err)
	}
	return e, nil
}

// ListAudit implements store.Store. limit <= 0 means no limit.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]store.AuditEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, time, actor, action, target, detail, prev_hash, hash
		FROM audit_log ORDER BY seq DESC LIMIT ?`, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list audit: %w", err)
	}
	defer rows.Close()
	var out []store.AuditEvent
	for rows.Next() {
		var (
			e store.AuditEvent
			t int64
		)
		if err := rows.Scan(&e.Seq, &t, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("sqlite: list audit: %w", err)
		}
		e.Time = store.FromNanos(t)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list audit: %w", err)
	}
	return out, nil
}
