package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/relay/store"
)

// AppendAudit implements store.Store. The event's time is normalised to
// what the database stores (Unix nanoseconds, UTC) before hashing, so the
// returned event, the stored one and a hash recomputed from either agree.
// The first event's PrevHash is "". The strings are stored as bytea, so
// any string, NUL included, is stored and hashed exactly.
//
// Appenders, on this relay or any other, are serialized by a SHARE ROW
// EXCLUSIVE lock on audit_log, taken before the last event is read: the
// lock conflicts with itself and with every writer of the table but not
// with readers. The last event is read after the lock is granted, in a new
// snapshot (READ COMMITTED), so it is the one the previous holder
// committed. The chain therefore never forks; were the lock ever missed,
// the primary key on seq and the unique prev_hash would refuse the fork.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	e.Time = store.FromNanos(store.Nanos(e.Time))
	in := e
	err := s.write(ctx, func(tx pgx.Tx) error {
		e = in
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
		e.Seq, e.PrevHash = last+1, prev
		e.Hash = store.AuditHash(prev, e)
		_, err = tx.Exec(ctx, `INSERT INTO audit_log (seq, time, actor, action, target, detail, prev_hash, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			e.Seq, store.Nanos(e.Time), []byte(e.Actor), []byte(e.Action), []byte(e.Target), []byte(e.Detail), e.PrevHash, e.Hash)
		return err
	})
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("postgres: append audit: %w", err)
	}
	return e, nil
}

// ListAudit implements store.Store. limit <= 0 means no limit.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]store.AuditEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, time, actor, action, target, detail, prev_hash, hash
		FROM audit_log ORDER BY seq DESC LIMIT $1`, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditEvent, error) {
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
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit: %w", err)
	}
	return out, nil
}
