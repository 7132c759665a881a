package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/relay/store"
)

var _ store.OutboxStore = (*Store)(nil)

const outboxCols = `id, kind, target, ticket, event, payload, status, attempts, next_at, last_error, last_status,
	created_at, updated_at, lease_owner, lease_until`

// outboxColsOf is outboxCols qualified with alias.
func outboxColsOf(alias string) string {
	return alias + "." + strings.ReplaceAll(strings.Join(strings.Fields(outboxCols), " "), ", ", ", "+alias+".")
}

func scanOutbox(row pgx.Row) (store.OutboxItem, error) {
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

func scanOutboxRows(rows pgx.Rows) ([]store.OutboxItem, error) {
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
	err := s.write(ctx, func(tx pgx.Tx) error {
		for i, it := range items {
			it.Status, it.Attempts, it.LeaseOwner, it.LeaseUntil = store.OutboxPending, 0, "", time.Time{}
			err := tx.QueryRow(ctx, `INSERT INTO outbox (kind, target, ticket, event, payload, status, attempts, next_at,
				last_error, last_status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $10, $11) RETURNING id`,
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
		return nil, fmt.Errorf("postgres: add to the outbox: %w", err)
	}
	return out, nil
}

// ClaimOutbox implements store.OutboxStore: the due rows are locked with
// FOR UPDATE SKIP LOCKED, so concurrent claims (other relays) pass over
// each other's rows instead of waiting for them, and a row another claim
// leased meanwhile fails the re-checked condition.
func (s *Store) ClaimOutbox(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]store.OutboxItem, error) {
	var out []store.OutboxItem
	err := retry(ctx, func() error {
		// The CTE runs once (a subquery under IN may be rescanned and
		// lock more rows than LIMIT).
		rows, err := s.pool.Query(ctx, `WITH due AS MATERIALIZED (
				SELECT id FROM outbox WHERE status = 'pending' AND next_at <= $3 AND lease_until <= $3
				ORDER BY next_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
			UPDATE outbox o SET lease_owner = $1, lease_until = $2 FROM due
			WHERE o.id = due.id AND o.status = 'pending' AND o.lease_until <= $3
			RETURNING `+outboxColsOf("o"), owner, store.Nanos(now.Add(lease)), store.Nanos(now), limitArg(limit))
		if err != nil {
			return err
		}
		out, err = scanOutboxRows(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim from the outbox: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].NextAt.Equal(out[j].NextAt) {
			return out[i].NextAt.Before(out[j].NextAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// FinishOutbox implements store.OutboxStore.
func (s *Store) FinishOutbox(ctx context.Context, owner string, it store.OutboxItem) error {
	tag, err := s.pool.Exec(ctx, `UPDATE outbox SET status = $1, attempts = $2, next_at = $3, last_error = $4,
		last_status = $5, updated_at = $6, lease_owner = '', lease_until = 0 WHERE id = $7 AND lease_owner = $8`,
		it.Status, it.Attempts, store.Nanos(it.NextAt), it.LastError, it.LastStatus, store.Nanos(it.UpdatedAt), it.ID, owner)
	if err != nil {
		return fmt.Errorf("postgres: finish outbox item %d: %w", it.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: finish outbox item %d: not leased by %s: %w", it.ID, owner, store.ErrNotFound)
	}
	return nil
}

// ListOutbox implements store.OutboxStore.
func (s *Store) ListOutbox(ctx context.Context, kind string, limit int, statuses ...string) ([]store.OutboxItem, error) {
	if statuses == nil {
		statuses = []string{}
	}
	rows, err := s.pool.Query(ctx, `SELECT `+outboxCols+` FROM outbox WHERE ($1 = '' OR kind = $1)
		AND (cardinality($3::text[]) = 0 OR status = ANY($3::text[]))
		ORDER BY created_at DESC, id DESC LIMIT $2`, kind, limitArg(limit), statuses)
	if err != nil {
		return nil, fmt.Errorf("postgres: list the outbox: %w", err)
	}
	out, err := scanOutboxRows(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: list the outbox: %w", err)
	}
	return out, nil
}

// RetryOutbox implements store.OutboxStore.
func (s *Store) RetryOutbox(ctx context.Context, id int64, now time.Time) (store.OutboxItem, error) {
	row := s.pool.QueryRow(ctx, `UPDATE outbox SET status = 'pending', attempts = 0, next_at = $1, updated_at = $1,
		lease_owner = '', lease_until = 0 WHERE id = $2 AND status = 'failed' RETURNING `+outboxCols, store.Nanos(now), id)
	it, err := scanOutbox(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.OutboxItem{}, fmt.Errorf("postgres: retry outbox item %d: no failed item: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.OutboxItem{}, fmt.Errorf("postgres: retry outbox item %d: %w", id, err)
	}
	return it, nil
}

// PruneOutbox implements store.OutboxStore.
func (s *Store) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM outbox WHERE status <> 'pending' AND updated_at < $1`, store.Nanos(before))
	if err != nil {
		return 0, fmt.Errorf("postgres: prune the outbox: %w", err)
	}
	return tag.RowsAffected(), nil
}
