package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/relay/store"
)

// AddHealthSamples implements store.Store: the batch is one INSERT of
// unnested arrays, so a batch costs one round trip. The same statement
// reads the device FOR KEY SHARE (health_raw has no foreign key; see the
// migration); ErrNotFound if the device is unknown, and then nothing is
// stored. Within a batch, the first sample with an id wins.
func (s *Store) AddHealthSamples(ctx context.Context, deviceID string, samples []store.HealthSample) (int, error) {
	if len(samples) == 0 {
		return 0, nil
	}
	n := len(samples)
	var (
		ids, memUsed, memAvail, swap = make([]uint64, n), make([]uint64, n), make([]uint64, n), make([]uint64, n)
		times                        = make([]int64, n)
		cpu, load1, disk, rx, tx     = make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		detail                       = make([][]byte, n)
	)
	for i, h := range samples {
		ids[i], times[i] = h.ID, store.Nanos(h.Time)
		cpu[i], load1[i] = h.CPUPercent, h.Load1
		memUsed[i], memAvail[i], swap[i] = h.MemUsedBytes, h.MemAvailBytes, h.SwapUsedBytes
		disk[i], rx[i], tx[i] = h.DiskUsedPercent, h.NetRxBps, h.NetTxBps
		detail[i] = h.Detail
	}
	var (
		known bool
		added int64
	)
	// One statement, so one transaction: retried on its own if two relays
	// inserting the same ids in different orders deadlock.
	err := retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `
			WITH dev AS (
				SELECT id FROM devices WHERE id = $1 FOR KEY SHARE
			), ins AS (
				INSERT INTO health_raw (device_id, id, time,
					cpu_percent, load1, mem_used, mem_avail, swap_used, disk_used_pct, net_rx_bps, net_tx_bps, detail)
				SELECT dev.id, u.* FROM dev, unnest($2::numeric[], $3::bigint[],
					$4::float8[], $5::float8[], $6::numeric[], $7::numeric[], $8::numeric[],
					$9::float8[], $10::float8[], $11::float8[], $12::bytea[]) AS u
				ON CONFLICT (device_id, id) DO NOTHING
				RETURNING 1
			)
			SELECT EXISTS (SELECT FROM dev), (SELECT count(*) FROM ins)`,
			deviceID, ids, times, cpu, load1, memUsed, memAvail, swap, disk, rx, tx, detail).Scan(&known, &added)
	})
	if err == nil && !known {
		err = store.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: add health samples %q: %w", deviceID, err)
	}
	return int(added), nil
}

// LatestHealth implements store.Store: the raw sample with the latest time
// (ties broken by the larger id).
func (s *Store) LatestHealth(ctx context.Context, deviceID string) (store.HealthSample, error) {
	var (
		h store.HealthSample
		t int64
	)
	err := s.pool.QueryRow(ctx, `SELECT id, time,
		cpu_percent, load1, mem_used, mem_avail, swap_used, disk_used_pct, net_rx_bps, net_tx_bps, detail
		FROM health_raw WHERE device_id = $1 ORDER BY time DESC, id DESC LIMIT 1`, deviceID).
		Scan(&h.ID, &t, &h.CPUPercent, &h.Load1, &h.MemUsedBytes, &h.MemAvailBytes, &h.SwapUsedBytes,
			&h.DiskUsedPercent, &h.NetRxBps, &h.NetTxBps, &h.Detail)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.HealthSample{}, fmt.Errorf("postgres: latest health %q: %w", deviceID, store.ErrNotFound)
	}
	if err != nil {
		return store.HealthSample{}, fmt.Errorf("postgres: latest health %q: %w", deviceID, err)
	}
	h.Time = store.FromNanos(t)
	return h, nil
}

// HealthRange implements store.Store: buckets (averaged in SQL, byte counts
// rounded half away from zero) and raw samples in one statement, so one
// snapshot. A bucket and a raw sample at the same time come bucket first.
func (s *Store) HealthRange(ctx context.Context, deviceID string, from, to time.Time) ([]store.HealthPoint, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT start AS t, false AS raw, width, 0::numeric AS id,
			cpu_percent / n, load1 / n, round(mem_used / n), round(mem_avail / n), round(swap_used / n),
			disk_used_pct / n, net_rx_bps / n, net_tx_bps / n
		FROM health_buckets WHERE device_id = $1 AND start >= $2 AND start < $3
		UNION ALL
		SELECT time, true, 0, id,
			cpu_percent, load1, mem_used, mem_avail, swap_used, disk_used_pct, net_rx_bps, net_tx_bps
		FROM health_raw WHERE device_id = $1 AND time >= $2 AND time < $3
		ORDER BY t, raw, width, id`, deviceID, store.Nanos(from), store.Nanos(to))
	if err != nil {
		return nil, fmt.Errorf("postgres: health range %q: %w", deviceID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.HealthPoint, error) {
		var (
			p        store.HealthPoint
			t, width int64
			raw      bool
			id       uint64
		)
		err := r.Scan(&t, &raw, &width, &id, &p.CPUPercent, &p.Load1, &p.MemUsedBytes, &p.MemAvailBytes, &p.SwapUsedBytes,
			&p.DiskUsedPercent, &p.NetRxBps, &p.NetTxBps)
		p.Time, p.Bucket = store.FromNanos(t), time.Duration(width)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: health range %q: %w", deviceID, err)
	}
	return out, nil
}

// CompactHealth implements store.Store. Buckets start at multiples of the
// width since the Unix epoch (so hourly buckets start on the hour, UTC); a
// bucket is dropped when its start is before dropBefore. A zero rawBefore
// folds nothing and a zero dropBefore drops nothing.
//
// The raw samples are deleted and folded into their buckets by one
// statement, so exactly the samples deleted are folded, once, even with
// another relay compacting or adding samples at the same time.
func (s *Store) CompactHealth(ctx context.Context, rawBefore time.Time, bucket time.Duration, dropBefore time.Time) (int64, error) {
	if bucket <= 0 {
		return 0, fmt.Errorf("postgres: compact health: bucket width %v must be positive", bucket)
	}
	var folded int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			WITH folded AS (
				DELETE FROM health_raw WHERE time < $2
				RETURNING device_id, time - (((time % $1) + $1) % $1) AS start,
					cpu_percent, load1, mem_used, mem_avail, swap_used, disk_used_pct, net_rx_bps, net_tx_bps
			), merged AS (
				INSERT INTO health_buckets AS b (device_id, width, start, n,
					cpu_percent, load1, mem_used, mem_avail, swap_used, disk_used_pct, net_rx_bps, net_tx_bps)
				SELECT device_id, $1, start, count(*),
					sum(cpu_percent), sum(load1), sum(mem_used), sum(mem_avail), sum(swap_used),
					sum(disk_used_pct), sum(net_rx_bps), sum(net_tx_bps)
				FROM folded GROUP BY device_id, start
				ON CONFLICT (device_id, width, start) DO UPDATE SET
					n = b.n + excluded.n,
					cpu_percent = b.cpu_percent + excluded.cpu_percent,
					load1 = b.load1 + excluded.load1,
					mem_used = b.mem_used + excluded.mem_used,
					mem_avail = b.mem_avail + excluded.mem_avail,
					swap_used = b.swap_used + excluded.swap_used,
					disk_used_pct = b.disk_used_pct + excluded.disk_used_pct,
					net_rx_bps = b.net_rx_bps + excluded.net_rx_bps,
					net_tx_bps = b.net_tx_bps + excluded.net_tx_bps
			)
			SELECT count(*) FROM folded`, int64(bucket), store.Nanos(rawBefore)).Scan(&folded)
		if err != nil {
			return fmt.Errorf("fold: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM health_buckets WHERE start < $1`, store.Nanos(dropBefore)); err != nil {
			return fmt.Errorf("drop buckets: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: compact health: %w", err)
	}
	return folded, nil
}
