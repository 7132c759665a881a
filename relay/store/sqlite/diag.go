package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// SetDevicePolicy implements store.Store.
func (s *Store) SetDevicePolicy(ctx context.Context, id string, unattended bool, maxSessions int) error {
	res, err := s.w.ExecContext(ctx, `UPDATE devices SET unattended = ?, max_sessions = ? WHERE id = ?`, b2i(unattended), maxSessions, id)
	if err != nil {
		return fmt.Errorf("sqlite: set device policy: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: set device policy of %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// SetDeviceGroup implements store.Store.
func (s *Store) SetDeviceGroup(ctx context.Context, id, group string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE devices SET grp = ? WHERE id = ?`, group, id)
	if err != nil {
		return fmt.Errorf("sqlite: set device group: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: set device group of %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// PutGroupSettings implements store.Store.
func (s *Store) PutGroupSettings(ctx context.Context, group string, data []byte) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO group_settings (name, data, updated) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated = excluded.updated`,
		group, nonNil(data), time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: put group settings: %w", err)
	}
	return nil
}

// GetGroupSettings implements store.Store.
func (s *Store) GetGroupSettings(ctx context.Context, group string) ([]byte, error) {
	var data []byte
	err := s.r.QueryRowContext(ctx, `SELECT data FROM group_settings WHERE name = ?`, group).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: group settings %q: %w", group, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: group settings: %w", err)
	}
	return data, nil
}

// PutRelaySetting implements store.Store.
func (s *Store) PutRelaySetting(ctx context.Context, name string, data []byte) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO relay_settings (name, data, updated) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated = excluded.updated`,
		name, nonNil(data), time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: put relay setting %q: %w", name, err)
	}
	return nil
}

// GetRelaySetting implements store.Store.
func (s *Store) GetRelaySetting(ctx context.Context, name string) ([]byte, error) {
	var data []byte
	err := s.r.QueryRowContext(ctx, `SELECT data FROM relay_settings WHERE name = ?`, name).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: relay setting %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: relay setting %q: %w", name, err)
	}
	return data, nil
}

// AddCheckReport implements store.Store.
func (s *Store) AddCheckReport(ctx context.Context, r store.CheckReport) (int64, error) {
	res, err := s.w.ExecContext(ctx, `INSERT INTO check_reports (device_id, time, technician, overall, data) VALUES (?, ?, ?, ?, ?)`,
		r.DeviceID, store.Nanos(r.Time), r.Technician, r.Overall, nonNil(r.Data))
	if isForeignKey(err) {
		return 0, fmt.Errorf("sqlite: add check report for %q: %w", r.DeviceID, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: add check report: %w", err)
	}
	return res.LastInsertId()
}

// ListCheckReports implements store.Store. limit <= 0 means no limit.
func (s *Store) ListCheckReports(ctx context.Context, deviceID string, limit int) ([]store.CheckReport, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, device_id, time, technician, overall, data FROM check_reports
		WHERE device_id = ? ORDER BY time DESC, id DESC LIMIT ?`, deviceID, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list check reports: %w", err)
	}
	defer rows.Close()
	var out []store.CheckReport
	for rows.Next() {
		var (
			r store.CheckReport
			t int64
		)
		if err := rows.Scan(&r.ID, &r.DeviceID, &t, &r.Technician, &r.Overall, &r.Data); err != nil {
			return nil, fmt.Errorf("sqlite: list check reports: %w", err)
		}
		r.Time = store.FromNanos(t)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list check reports: %w", err)
	}
	return out, nil
}

// QueueCommand implements store.Store.
func (s *Store) QueueCommand(ctx context.Context, q store.QueuedCommand) (int64, error) {
	res, err := s.w.ExecContext(ctx, `INSERT INTO queued_commands (device_id, technician, created, expires, data) VALUES (?, ?, ?, ?, ?)`,
		q.DeviceID, q.Technician, store.Nanos(q.Created), store.Nanos(q.Expires), nonNil(q.Data))
	if isForeignKey(err) {
		return 0, fmt.Errorf("sqlite: queue command for %q: %w", q.DeviceID, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: queue command: %w", err)
	}
	return res.LastInsertId()
}

// TakeQueuedCommands implements store.Store.
func (s *Store) TakeQueuedCommands(ctx context.Context, deviceID string, now time.Time) ([]store.QueuedCommand, error) {
	var out []store.QueuedCommand
	err := s.write(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT id, device_id, technician, created, expires, data FROM queued_commands
			WHERE device_id = ? AND expires > ? ORDER BY id`, deviceID, store.Nanos(now))
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				q      store.QueuedCommand
				c, exp int64
			)
			if err := rows.Scan(&q.ID, &q.DeviceID, &q.Technician, &c, &exp, &q.Data); err != nil {
				rows.Close()
				return err
			}
			q.Created, q.Expires = store.FromNanos(c), store.FromNanos(exp)
			out = append(out, q)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM queued_commands WHERE device_id = ?`, deviceID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: take queued commands: %w", err)
	}
	return out, nil
}
