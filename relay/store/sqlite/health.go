package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// healthStmts are the health write path's statements, prepared once on the
// writer connection: a report costs no SQL parsing.
type healthStmts struct {
	device, insert, touch *sql.Stmt
}

func (h *healthStmts) prepare(ctx context.Context, w *sql.DB) error {
	var err error
	if h.device, err = w.PrepareContext(ctx, `SELECT 1 FROM devices WHERE id = ?`); err != nil {
		return err
	}
	if h.insert, err = w.PrepareContext(ctx, `INSERT INTO health_raw (device_id, id, time,
		cpu_percent, load1, mem_used, mem_avail, swap_used, disk_used_pct, net_rx_bps, net_tx_bps, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (device_id, time, id) DO NOTHING`); err != nil {
		return err
	}
	h.touch, err = w.PrepareContext(ctx, `UPDATE devices SET last_seen = ? WHERE id = ?`)
	return err
}

func (h *healthStmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{h.device, h.insert, h.touch} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// addHealth stores one device's samples (and touches it) in tx: how many
// samples were new, or store.ErrNotFound if the device is unknown. The
// device is checked by the first insert's foreign key (a failed statement
// writes nothing and leaves the transaction open), so a report costs no
// query of its own for it; without samples, by a query.
func (s *Store) addHealth(ctx context.Context, tx *sql.Tx, deviceID string, samples []store.HealthSample, touch time.Time) (int, error) {
	if len(samples) == 0 {
		var one int
		err := tx.StmtContext(ctx, s.health.device).QueryRowContext(ctx, deviceID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, store.ErrNotFound
		}
		if err != nil {
			return 0, err
		}
	}
	added := 0
	if len(samples) > 0 {
		stmt := tx.StmtContext(ctx, s.health.insert)
		for _, h := range samples {
			n, err := rowsAffected(stmt.ExecContext(ctx, deviceID, int64(h.ID), store.Nanos(h.Time),
				h.CPUPercent, h.Load1, int64(h.MemUsedBytes), int64(h.MemAvailBytes), int64(h.SwapUsedBytes),
				h.DiskUsedPercent, h.NetRxBps, h.NetTxBps, h.Detail))
			if isForeignKey(err) && added == 0 {
				return 0, store.ErrNotFound
			}
			if err != nil {
				return 0, err
			}
			added += int(n)
		}
	}
	if !touch.IsZero() {
		if _, err := tx.StmtContext(ctx, s.health.touch).ExecContext(ctx, store.Nanos(touch), deviceID); err != nil {
			return 0, err
		}
	}
	return added, nil
}

// AddHealthSamples implements store.Store. ErrNotFound if the device is
// unknown; then nothing is stored.
func (s *Store) AddHealthSamples(ctx context.Context, deviceID string, samples []store.HealthSample) (int, error) {
	if len(samples) == 0 {
		return 0, nil
	}
	added := 0
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		added, err = s.addHealth(ctx, tx, deviceID, samples, time.Time{})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: add health samples %q: %w", deviceID, err)
	}
	return added, nil
}

// AddHealthBatches implements store.HealthBatcher: one IMMEDIATE
// transaction, one commit, for every device in batches. A device that is
// unknown gets ErrNotFound in its own batch (its first insert fails on
// the foreign key, before any of its rows is written).
func (s *Store) AddHealthBatches(ctx context.Context, batches []store.HealthBatch) error {
	for i := range batches {
		batches[i].Added, batches[i].Err = 0, nil
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		for i := range batches {
			b := &batches[i]
			n, err := s.addHealth(ctx, tx, b.DeviceID, b.Samples, b.Touch)
			switch {
			case errors.Is(err, store.ErrNotFound):
				b.Err = fmt.Errorf("sqlite: add health samples %q: %w", b.DeviceID, err)
			case err != nil:
				return fmt.Errorf("device %q: %w", b.DeviceID, err)
			default:
				b.Added = n
			}
		}
		return nil
	})
	if err != nil {
		for i := range batches {
			batches[i].Added, batches[i].Err = 0, nil
		}
		return fmt.Errorf("sqlite: add health batches: %w", err)
	}
	return nil
}

// LatestHealth implements store.Store: the raw sample with the latest time
// (ties broken by the larger id as stored).
func (s *Store) LatestHealth(ctx context.Context, deviceID string) (store.HealthSample, error) {
	var (
		h                       store.HealthSample
		id, t                   int64
		memUsed, memAvail, swap int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT id, time,
		cpu_percent, load1, mem_used, mem_avail, swap_used, disk_used_pct, net_rx_bps, net_tx_bps, detail
		FROM health_raw WHERE device_id = ? ORDER BY time DESC, id DESC LIMIT 1`, deviceID).
		Scan(&id, &t, &h.CPUPercent, &h.Load1, &memUsed, &memAvail, &swap,
			&h.DiskUsedPercent, &h.NetRxBps, &h.NetTxBps, &h.Detail)
	if errors.Is(err, sql.ErrNoRows) {
		return store.HealthSample{}, fmt.Errorf("sqlite: latest health %q: %w", deviceID, store.ErrNotFound)
	}
	if err != nil {
		return store.HealthSample{}, fmt.Errorf("sqlite: latest health %q: %w", deviceID, err)
	}
	h.ID, h.Time = uint64(id), store.FromNanos(t)
	h.MemUsedBytes, h.MemAvailBytes, h.SwapUsedBytes = uint64(memUsed), uint64(memAvail), uint64(swap)
	return h, nil
}

// HealthRange implements store.Store. A bucket and a raw sample at the same
// time come bucket first.
func (s *Store) HealthRange(ctx context.Context, deviceID string, from, to time.Time) ([]store.HealthPoint, error) {
	var buckets, raw []store.HealthPoint
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT start, width, n,
			cpu_percent, load1, mem_used, mem_avail, swap_used, disk_used_pct, net_rx_bps, net_tx_bps
			FROM health_buckets WHERE device_id = ? AND start >= ? AND start < ?
			ORDER BY start, width`, deviceID, store.Nanos(from), store.Nanos(to))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				p                       store.HealthPoint
				start, width, n         int64
				memUsed, memAvail, swap float64
			)
			if err := rows.Scan(&start, &width, &n, &p.CPUPercent, &p.Load1, &memUsed, &memAvail, &swap,
				&p.DiskUsedPercent, &p.NetRxBps, &p.NetTxBps); err != nil {
				return err
			}
			avg := func(sum float64) float64 { return sum / float64(n) }
			avgU := func(sum float64) uint64 { return uint64(math.Round(sum / float64(n))) }
			p.Time, p.Bucket = store.FromNanos(start), time.Duration(width)
			p.CPUPercent, p.Load1 = avg(p.CPUPercent), avg(p.Load1)
			p.MemUsedBytes, p.MemAvailBytes, p.SwapUsedBytes = avgU(memUsed), avgU(memAvail), avgU(swap)
			p.DiskUsedPercent, p.NetRxBps, p.NetTxBps = avg(p.DiskUsedPercent), avg(p.NetRxBps), avg(p.NetTxBps)
			buckets = append(buckets, p)
		}
		if err := rows.Err(); err != nil {
			return err
		}

		rows, err = tx.QueryContext(ctx, `SELECT time,
			cpu_percent, load1, mem_used, mem_avail, swap_used, disk_used_pct, net_rx_bps, net_tx_bps
			FROM health_raw WHERE device_id = ? AND time >= ? AND time < ?
			ORDER BY time, id`, deviceID, store.Nanos(from), store.Nanos(to))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				p                          store.HealthPoint
				t, memUsed, memAvail, swap int64
			)
			if err := rows.Scan(&t, &p.CPUPercent, &p.Load1, &memUsed, &memAvail, &swap,
				&p.DiskUsedPercent, &p.NetRxBps, &p.NetTxBps); err != nil {
				return err
			}
			p.Time = store.FromNanos(t)
			p.MemUsedBytes, p.MemAvailBytes, p.SwapUsedBytes = uint64(memUsed), uint64(memAvail), uint64(swap)
			raw = append(raw, p)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: health range %q: %w", deviceID, err)
	}

	// Merge the two time-ordered lists.
	out := make([]store.HealthPoint, 0, len(buckets)+len(raw))
	for len(buckets) > 0 && len(raw) > 0 {
		if !raw[0].Time.Before(buckets[0].Time) {
			out, buckets = append(out, buckets[0]), buckets[1:]
		} else {
			out, raw = append(out, raw[0]), raw[1:]
		}
	}
	out = append(out, buckets...)
	return append(out, raw...), nil
}

// CompactHealth implements store.Store. Buckets start at multiples of the
// width since the Unix epoch (so hourly buckets start on the hour, UTC); a
// bucket is dropped when its start is before dropBefore. A zero rawBefore
// folds nothing and a zero dropBefore drops nothing.
func (s *Store) CompactHealth(ctx context.Context, rawBefore time.Time, bucket time.Duration, dropBefore time.Time) (int64, error) {
	if bucket <= 0 {
		return 0, fmt.Errorf("sqlite: compact health: bucket width %v must be positive", bucket)
	}
	var folded int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		raw, w := store.Nanos(rawBefore), int64(bucket)
		// Fold into buckets, adding to any bucket an earlier compaction made.
		// The sums are REAL (total()) so they cannot overflow. INDEXED BY:
		// without it the planner prefers scanning the whole table in
		// (device_id, id) order to save the GROUP BY sort, while a
		// compaction usually folds a small, old slice of it.
		if _, err := tx.ExecContext(ctx, `INSERT INTO health_buckets (device_id, width, start, n,
				cpu_percent, load1, mem_used, mem_avail, swap_used, disk_used_pct, net_rx_bps, net_tx_bps)
			SELECT device_id, ?1, time - (((time % ?1) + ?1) % ?1) AS bstart, count(*),
				total(cpu_percent), total(load1), total(mem_used), total(mem_avail), total(swap_used),
				total(disk_used_pct), total(net_rx_bps), total(net_tx_bps)
			FROM health_raw INDEXED BY health_raw_time WHERE time < ?2
			GROUP BY device_id, bstart
			ON CONFLICT (device_id, width, start) DO UPDATE SET
				n = n + excluded.n,
				cpu_percent = cpu_percent + excluded.cpu_percent,
				load1 = load1 + excluded.load1,
				mem_used = mem_used + excluded.mem_used,
				mem_avail = mem_avail + excluded.mem_avail,
				swap_used = swap_used + excluded.swap_used,
				disk_used_pct = disk_used_pct + excluded.disk_used_pct,
				net_rx_bps = net_rx_bps + excluded.net_rx_bps,
				net_tx_bps = net_tx_bps + excluded.net_tx_bps`, w, raw); err != nil {
			return fmt.Errorf("fold: %w", err)
		}
		var err error
		if folded, err = rowsAffected(tx.ExecContext(ctx, `DELETE FROM health_raw WHERE time < ?`, raw)); err != nil {
			return fmt.Errorf("delete raw: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM health_buckets WHERE start < ?`, store.Nanos(dropBefore)); err != nil {
			return fmt.Errorf("drop buckets: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: compact health: %w", err)
	}
	return folded, nil
}
