package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/relay/store"
)

// PutInventory implements store.Store. ErrNotFound if the device is
// unknown. The changes are recorded under inv.DeviceID whatever their own
// DeviceID says, in one statement, in their order. Their strings are
// stored as bytea, so any value an agent reports is kept exactly.
func (s *Store) PutInventory(ctx context.Context, inv store.Inventory, sum store.DeviceSummary, changes []store.InventoryChange) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE devices SET
			model = $1, cpu_model = $2, memory_bytes = $3, disk_total_bytes = $4, disk_free_bytes = $5, user_name = $6,
			os_name = $8, os_version = $9, os_family = $10, os_display = $11, disk_used_bytes = $12
			WHERE id = $7`,
			sum.Model, sum.CPUModel, sum.MemoryBytes, sum.DiskTotalBytes, sum.DiskFreeBytes, sum.User, inv.DeviceID,
			sum.OSName, sum.OSVersion, sum.OSFamily, sum.OSDisplay, sum.DiskUsedBytes)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `INSERT INTO inventories (device_id, collected_at, received_at, data)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (device_id) DO UPDATE SET
				collected_at = excluded.collected_at, received_at = excluded.received_at, data = excluded.data`,
			inv.DeviceID, store.Nanos(inv.CollectedAt), store.Nanos(inv.ReceivedAt), inv.Data); err != nil {
			return err
		}
		if len(changes) == 0 {
			return nil
		}
		times := make([]int64, len(changes))
		fields := make([][]byte, len(changes))
		froms := make([][]byte, len(changes))
		tos := make([][]byte, len(changes))
		for i, c := range changes {
			times[i], fields[i], froms[i], tos[i] = store.Nanos(c.Time), []byte(c.Field), []byte(c.From), []byte(c.To)
		}
		// ORDER BY ord: identities are drawn in input order, so equal
		// times come back newest (last given) first.
		_, err = tx.Exec(ctx, `INSERT INTO inventory_changes (device_id, time, field, from_value, to_value)
			SELECT $1, t, f, fr, tv FROM unnest($2::bigint[], $3::bytea[], $4::bytea[], $5::bytea[])
				WITH ORDINALITY AS c (t, f, fr, tv, ord)
			ORDER BY ord`,
			inv.DeviceID, times, fields, froms, tos)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: put inventory %q: %w", inv.DeviceID, err)
	}
	return nil
}

// GetInventory implements store.Store.
func (s *Store) GetInventory(ctx context.Context, deviceID string) (store.Inventory, error) {
	inv := store.Inventory{DeviceID: deviceID}
	var collected, received int64
	err := s.pool.QueryRow(ctx, `SELECT collected_at, received_at, data FROM inventories WHERE device_id = $1`, deviceID).
		Scan(&collected, &received, &inv.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Inventory{}, fmt.Errorf("postgres: get inventory %q: %w", deviceID, store.ErrNotFound)
	}
	if err != nil {
		return store.Inventory{}, fmt.Errorf("postgres: get inventory %q: %w", deviceID, err)
	}
	inv.CollectedAt, inv.ReceivedAt = store.FromNanos(collected), store.FromNanos(received)
	return inv, nil
}

// InventoryHistory implements store.Store. Changes with equal times come
// back in reverse insertion order; limit <= 0 means no limit.
func (s *Store) InventoryHistory(ctx context.Context, deviceID string, limit int) ([]store.InventoryChange, error) {
	rows, err := s.pool.Query(ctx, `SELECT time, field, from_value, to_value FROM inventory_changes
		WHERE device_id = $1 ORDER BY time DESC, seq DESC LIMIT $2`, deviceID, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: inventory history %q: %w", deviceID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.InventoryChange, error) {
		var (
			t               int64
			field, from, to []byte
		)
		err := r.Scan(&t, &field, &from, &to)
		return store.InventoryChange{DeviceID: deviceID, Time: store.FromNanos(t), Field: string(field), From: string(from), To: string(to)}, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: inventory history %q: %w", deviceID, err)
	}
	return out, nil
}
