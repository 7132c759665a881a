package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/deskside/deskside/relay/store"
)

// PutInventory implements store.Store. ErrNotFound if the device is
// unknown. The changes are recorded under inv.DeviceID whatever their own
// DeviceID says.
func (s *Store) PutInventory(ctx context.Context, inv store.Inventory, sum store.DeviceSummary, changes []store.InventoryChange) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `UPDATE devices SET
			model = ?, cpu_model = ?, memory_bytes = ?, disk_total_bytes = ?, disk_free_bytes = ?, user_name = ?,
			os_name = ?, os_version = ?, os_family = ?, os_display = ?, disk_used_bytes = ?
			WHERE id = ?`,
			sum.Model, sum.CPUModel, int64(sum.MemoryBytes), int64(sum.DiskTotalBytes), int64(sum.DiskFreeBytes), sum.User,
			sum.OSName, sum.OSVersion, sum.OSFamily, sum.OSDisplay, int64(sum.DiskUsedBytes),
			inv.DeviceID))
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO inventories (device_id, collected_at, received_at, data)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (device_id) DO UPDATE SET
				collected_at = excluded.collected_at, received_at = excluded.received_at, data = excluded.data`,
			inv.DeviceID, store.Nanos(inv.CollectedAt), store.Nanos(inv.ReceivedAt), inv.Data); err != nil {
			return err
		}
		if len(changes) == 0 {
			return nil
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO inventory_changes (device_id, time, field, from_value, to_value)
			VALUES (?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, c := range changes {
			if _, err := stmt.ExecContext(ctx, inv.DeviceID, store.Nanos(c.Time), c.Field, c.From, c.To); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: put inventory %q: %w", inv.DeviceID, err)
	}
	return nil
}

// GetInventory implements store.Store.
func (s *Store) GetInventory(ctx context.Context, deviceID string) (store.Inventory, error) {
	inv := store.Inventory{DeviceID: deviceID}
	var collected, received int64
	err := s.r.QueryRowContext(ctx, `SELECT collected_at, received_at, data FROM inventories WHERE device_id = ?`, deviceID).
		Scan(&collected, &received, &inv.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Inventory{}, fmt.Errorf("sqlite: get inventory %q: %w", deviceID, store.ErrNotFound)
	}
	if err != nil {
		return store.Inventory{}, fmt.Errorf("sqlite: get inventory %q: %w", deviceID, err)
	}
	inv.CollectedAt, inv.ReceivedAt = store.FromNanos(collected), store.FromNanos(received)
	return inv, nil
}

// InventoryHistory implements store.Store. Changes with equal times come
// back in reverse insertion order; limit <= 0 means no limit.
func (s *Store) InventoryHistory(ctx context.Context, deviceID string, limit int) ([]store.InventoryChange, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT time, field, from_value, to_value FROM inventory_changes
		WHERE device_id = ? ORDER BY time DESC, seq DESC LIMIT ?`, deviceID, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: inventory history %q: %w", deviceID, err)
	}
	defer rows.Close()
	var out []store.InventoryChange
	for rows.Next() {
		c := store.InventoryChange{DeviceID: deviceID}
		var t int64
		if err := rows.Scan(&t, &c.Field, &c.From, &c.To); err != nil {
			return nil, fmt.Errorf("sqlite: inventory history %q: %w", deviceID, err)
		}
		c.Time = store.FromNanos(t)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: inventory history %q: %w", deviceID, err)
	}
	return out, nil
}
