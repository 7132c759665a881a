package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/deskside/deskside/relay/store"
)

// PutUpdateState implements store.UpdateStore.
func (s *Store) PutUpdateState(ctx context.Context, u store.UpdateState) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO update_states (device_id, version, state, reason, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (device_id) DO UPDATE SET version = excluded.version, state = excluded.state,
			reason = excluded.reason, updated_at = excluded.updated_at`,
		u.DeviceID, u.Version, u.State, u.Reason, store.Nanos(u.At))
	if isForeignKey(err) {
		return fmt.Errorf("sqlite: update state of %q: %w", u.DeviceID, store.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("sqlite: update state of %q: %w", u.DeviceID, err)
	}
	return nil
}

// GetUpdateState implements store.UpdateStore.
func (s *Store) GetUpdateState(ctx context.Context, deviceID string) (store.UpdateState, error) {
	u := store.UpdateState{DeviceID: deviceID}
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT version, state, reason, updated_at FROM update_states WHERE device_id = ?`, deviceID).
		Scan(&u.Version, &u.State, &u.Reason, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("sqlite: update state of %q: %w", deviceID, store.ErrNotFound)
	} else if err != nil {
		return u, fmt.Errorf("sqlite: update state of %q: %w", deviceID, err)
	}
	u.At = store.FromNanos(at)
	return u, nil
}

// UpdateProgress implements store.UpdateStore.
func (s *Store) UpdateProgress(ctx context.Context, version string) (map[int]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT state, count(*) FROM update_states WHERE version = ? GROUP BY state`, version)
	if err != nil {
		return nil, fmt.Errorf("sqlite: update progress of %q: %w", version, err)
	}
	defer rows.Close()
	out := map[int]int64{}
	for rows.Next() {
		var st int
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("sqlite: update progress of %q: %w", version, err)
		}
		out[st] = n
	}
	return out, rows.Err()
}

// ListUpdateStates implements store.UpdateStore.
func (s *Store) ListUpdateStates(ctx context.Context, after string, limit int) ([]store.UpdateState, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT device_id, version, state, reason, updated_at FROM update_states
		WHERE device_id > ? ORDER BY device_id LIMIT ?`, after, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list update states: %w", err)
	}
	defer rows.Close()
	var out []store.UpdateState
	for rows.Next() {
		var u store.UpdateState
		var at int64
		if err := rows.Scan(&u.DeviceID, &u.Version, &u.State, &u.Reason, &at); err != nil {
			return nil, fmt.Errorf("sqlite: list update states: %w", err)
		}
		u.At = store.FromNanos(at)
		out = append(out, u)
	}
	return out, rows.Err()
}
