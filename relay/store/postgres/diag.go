package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/relay/store"
)

// SetDevicePolicy implements store.Store.
func (s *Store) SetDevicePolicy(ctx context.Context, id string, unattended bool, maxSessions int) error {
	return s.updateDevice(ctx, "set device policy", id,
		`UPDATE devices SET unattended = $1, max_sessions = $2 WHERE id = $3`, unattended, maxSessions, id)
}

// SetDeviceGroup implements store.Store.
func (s *Store) SetDeviceGroup(ctx context.Context, id, group string) error {
	return s.updateDevice(ctx, "set device group", id,
		`UPDATE devices SET group_name = $1 WHERE id = $2`, group, id)
}

// PutGroupSettings implements store.Store.
func (s *Store) PutGroupSettings(ctx context.Context, group string, data []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO group_settings (name, data, updated) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated = excluded.updated`,
		group, nonNil(data), time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("postgres: put group settings %q: %w", group, err)
	}
	return nil
}

// GetGroupSettings implements store.Store.
func (s *Store) GetGroupSettings(ctx context.Context, group string) ([]byte, error) {
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT data FROM group_settings WHERE name = $1`, group).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: group settings %q: %w", group, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: group settings %q: %w", group, err)
	}
	return data, nil
}

// PutRelaySetting implements store.Store.
func (s *Store) PutRelaySetting(ctx context.Context, name string, data []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO relay_settings (name, data, updated) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated = excluded.updated`,
		name, nonNil(data), time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("postgres: put relay setting %q: %w", name, err)
	}
	return nil
}

// GetRelaySetting implements store.Store.
func (s *Store) GetRelaySetting(ctx context.Context, name string) ([]byte, error) {
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT data FROM relay_settings WHERE name = $1`, name).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: relay setting %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: relay setting %q: %w", name, err)
	}
	return data, nil
}

// AddCheckReport implements store.Store.
func (s *Store) AddCheckReport(ctx context.Context, r store.CheckReport) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO check_reports (device_id, time, technician, overall, data)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		r.DeviceID, store.Nanos(r.Time), r.Technician, r.Overall, nonNil(r.Data)).Scan(&id)
	if isForeignKey(err) {
		return 0, fmt.Errorf("postgres: add check report for %q: %w", r.DeviceID, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: add check report: %w", err)
	}
	return id, nil
}

// ListCheckReports implements store.Store. limit <= 0 means no limit.
func (s *Store) ListCheckReports(ctx context.Context, deviceID string, limit int) ([]store.CheckReport, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, device_id, time, technician, overall, data FROM check_reports
		WHERE device_id = $1 ORDER BY time DESC, id DESC LIMIT $2`, deviceID, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: list check reports: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.CheckReport, error) {
		var (
			r store.CheckReport
			t int64
		)
		err := row.Scan(&r.ID, &r.DeviceID, &t, &r.Technician, &r.Overall, &r.Data)
		r.Time = store.FromNanos(t)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list check reports: %w", err)
	}
	return out, nil
}

// QueueCommand implements store.Store.
func (s *Store) QueueCommand(ctx context.Context, q store.QueuedCommand) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO queued_commands (device_id, technician, created, expires, data)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		q.DeviceID, q.Technician, store.Nanos(q.Created), store.Nanos(q.Expires), nonNil(q.Data)).Scan(&id)
	if isForeignKey(err) {
		return 0, fmt.Errorf("postgres: queue command for %q: %w", q.DeviceID, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: queue command: %w", err)
	}
	return id, nil
}

// TakeQueuedCommands implements store.Store. It is one DELETE … RETURNING
// of all the device's commands, so relays taking at the same time get
// disjoint sets; the expired ones are deleted and not returned.
func (s *Store) TakeQueuedCommands(ctx context.Context, deviceID string, now time.Time) ([]store.QueuedCommand, error) {
	rows, err := s.pool.Query(ctx, `DELETE FROM queued_commands WHERE device_id = $1
		RETURNING id, device_id, technician, created, expires, data`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("postgres: take queued commands: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.QueuedCommand, error) {
		var (
			q      store.QueuedCommand
			c, exp int64
		)
		err := r.Scan(&q.ID, &q.DeviceID, &q.Technician, &c, &exp, &q.Data)
		q.Created, q.Expires = store.FromNanos(c), store.FromNanos(exp)
		return q, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: take queued commands: %w", err)
	}
	// RETURNING has no order; commands come back oldest (lowest id) first.
	slices.SortFunc(all, func(a, b store.QueuedCommand) int { return cmp.Compare(a.ID, b.ID) })
	var out []store.QueuedCommand
	at := store.Nanos(now)
	for _, q := range all {
		if store.Nanos(q.Expires) > at {
			out = append(out, q)
		}
	}
	return out, nil
}
