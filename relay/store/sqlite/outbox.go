package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/deskside/deskside/relay/store"
)

var _ store.OutboxStore = (*Store)(nil)

const outboxCols = `id, kind, target, ticket, event, payload, status, attempts, next_at, last_error, last_status,
	created_at, updated_at, lease_owner, lease_until`

func scanOutbox(row interface{ Scan(...any) error }) (store.OutboxItem, error) {
	var (
		it                                 store.OutboxItem
		next, created, updated, leaseUntil int64
	)
	err := row.Scan(&it.ID, &it.Kind, &it.Target, &it.Ticket, &it.Event, &it.Payload, &it.Status, &it.Attempts, &next,
		&it.LastError, &it.LastStatus, &created, &updated, &it.LeaseOwner, &leaseUntil)
	if err != nil {
		return store.OutboxItem{}, err
	}
	it.NextAt, it.CreatedAt, it.UpdatedAt, it.LeaseUntil = store.FromNanos(next), store.FromNanos(created), store.FromNanos(updated), store.FromNanos(leaseUntil)
	return it, nil
}

func scanOutboxRows(rows *sql.Rows) ([]store.OutboxItem, error) {
	defer rows.Close()
	var out []store.OutboxItem
	for rows.Next() {
		it, err := scanOutbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// AddOutbox implements store.OutboxStore.
func (s *Store) AddOutbox(ctx context.Context, items []store.OutboxItem) ([]store.OutboxItem, error) {
	out := make([]store.OutboxItem, len(items))
	err := s.write(ctx, func(tx *sql.Tx) error {
		for i, it := range items {
			it.Status, it.Attempts, it.LeaseOwner, it.LeaseUntil = store.OutboxPending, 0, "", time.Time{}
			err := tx.QueryRowContext(ctx, `INSERT INTO outbox (kind, target, ticket, event, payload, status, attempts, next_at,
				last_error, last_status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?) RETURNING id`,
				it.Kind, it.Target, it.Ticket, it.Event, nonNil(it.Payload), it.Status, store.Nanos(it.NextAt),
				it.LastError, it.LastStatus, store.Nanos(it.CreatedAt), store.Nanos(it.UpdatedAt)).Scan(&it.ID)
			if err != nil {
				return err
			}
			out[i] = it
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: add to the outbox: %w", err)
	}
	return out, nil
}

// ClaimOutbox implements store.OutboxStore. The single writer connection
// runs it as one transaction, so two claims never overlap.
func (s *Store) ClaimOutbox(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]store.OutboxItem, error) {
	var out []store.OutboxItem
	err := s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE outbox SET lease_owner = ?, lease_until = ?
			WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_at <= ? AND lease_until <= ?
				ORDER BY next_at, id LIMIT ?)
			RETURNING `+outboxCols, owner, store.Nanos(now.Add(lease)), store.Nanos(now), store.Nanos(now), limitArg(limit))
		if err != nil {
			return err
		}
		out, err = scanOutboxRows(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim from the outbox: %w", err)
	}
	sortDue(out)
	return out, nil
}

// sortDue orders claimed items as ClaimOutbox promises (RETURNING does not).
func sortDue(items []store.OutboxItem) {
	sort.Slice(items, func(i, j int) bool {
		if !items[i].NextAt.Equal(items[j].NextAt) {
			return items[i].NextAt.Before(items[j].NextAt)
		}
		return items[i].ID < items[j].ID
	})
}

// FinishOutbox implements store.OutboxStore.
func (s *Store) FinishOutbox(ctx context.Context, owner string, it store.OutboxItem) error {
	n, err := rowsAffected(s.w.ExecContext(ctx, `UPDATE outbox SET status = ?, attempts = ?, next_at = ?, last_error = ?,
		last_status = ?, updated_at = ?, lease_owner = '', lease_until = 0 WHERE id = ? AND lease_owner = ?`,
		it.Status, it.Attempts, store.Nanos(it.NextAt), it.LastError, it.LastStatus, store.Nanos(it.UpdatedAt), it.ID, owner))
	if err != nil {
		return fmt.Errorf("sqlite: finish outbox item %d: %w", it.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: finish outbox item %d: not leased by %s: %w", it.ID, owner, store.ErrNotFound)
	}
	return nil
}

// ListOutbox implements store.OutboxStore.
func (s *Store) ListOutbox(ctx context.Context, kind string, limit int, statuses ...string) ([]store.OutboxItem, error) {
	q := `SELECT ` + outboxCols + ` FROM outbox WHERE (? = '' OR kind = ?)`
	args := []any{kind, kind}
	if len(statuses) > 0 {
		q += ` AND status IN (?` + strings.Repeat(`, ?`, len(statuses)-1) + `)`
		for _, st := range statuses {
			args = append(args, st)
		}
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	rows, err := s.r.QueryContext(ctx, q, append(args, limitArg(limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list the outbox: %w", err)
	}
	out, err := scanOutboxRows(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list the outbox: %w", err)
	}
	return out, nil
}

// RetryOutbox implements store.OutboxStore.
func (s *Store) RetryOutbox(ctx context.Context, id int64, now time.Time) (store.OutboxItem, error) {
	row := s.w.QueryRowContext(ctx, `UPDATE outbox SET status = 'pending', attempts = 0, next_at = ?, updated_at = ?,
		lease_owner = '', lease_until = 0 WHERE id = ? AND status = 'failed' RETURNING `+outboxCols, store.Nanos(now), store.Nanos(now), id)
	it, err := scanOutbox(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.OutboxItem{}, fmt.Errorf("sqlite: retry outbox item %d: no failed item: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("sqlite: retry outbox item %d: %w", id, err)
	}
	return it, nil
}

// PruneOutbox implements store.OutboxStore.
func (s *Store) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	n, err := rowsAffected(s.w.ExecContext(ctx, `DELETE FROM outbox WHERE status <> 'pending' AND updated_at < ?`, store.Nanos(before)))
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune the outbox: %w", err)
	}
	return n, nil
}
