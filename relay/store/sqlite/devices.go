package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deskside/deskside/relay/store"
)

const deviceCols = `id, hostname, agent_version, os, arch, cert_serial,
	first_seen, last_seen, online, revoked, revoked_at,
	model, cpu_model, memory_bytes, disk_total_bytes, disk_free_bytes, user_name`

type scanner interface{ Scan(dest ...any) error }

func scanDevice(sc scanner) (store.Device, error) {
	var (
		d                           store.Device
		first, last, revokedAt      int64
		online, revoked             int64
		memBytes, diskTot, diskFree int64
	)
	err := sc.Scan(&d.ID, &d.Hostname, &d.AgentVersion, &d.OS, &d.Arch, &d.CertSerial,
		&first, &last, &online, &revoked, &revokedAt,
		&d.Model, &d.CPUModel, &memBytes, &diskTot, &diskFree, &d.User)
	if err != nil {
		return store.Device{}, err
	}
	d.FirstSeen, d.LastSeen, d.RevokedAt = fromNanos(first), fromNanos(last), fromNanos(revokedAt)
	d.Online, d.Revoked = online != 0, revoked != 0
	d.MemoryBytes, d.DiskTotalBytes, d.DiskFreeBytes = uint64(memBytes), uint64(diskTot), uint64(diskFree)
	return d, nil
}

// CreateDevice implements store.Store.
func (s *Store) CreateDevice(ctx context.Context, d store.Device) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO devices (`+deviceCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.Hostname, d.AgentVersion, d.OS, d.Arch, d.CertSerial,
		nanos(d.FirstSeen), nanos(d.LastSeen), b2i(d.Online), b2i(d.Revoked), nanos(d.RevokedAt),
		d.Model, d.CPUModel, int64(d.MemoryBytes), int64(d.DiskTotalBytes), int64(d.DiskFreeBytes), d.User)
	if isUnique(err) {
		return fmt.Errorf("sqlite: create device %q: %w", d.ID, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create device %q: %w", d.ID, err)
	}
	return nil
}

// GetDevice implements store.Store.
func (s *Store) GetDevice(ctx context.Context, id string) (store.Device, error) {
	d, err := scanDevice(s.r.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Device{}, fmt.Errorf("sqlite: get device %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Device{}, fmt.Errorf("sqlite: get device %q: %w", id, err)
	}
	return d, nil
}

// likeEscaper makes user input match itself literally in LIKE … ESCAPE '\'.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// containsPattern is the LIKE pattern for "contains s".
func containsPattern(s string) string {
	return "%" + likeEscaper.Replace(s) + "%"
}

// ListDevices implements store.Store. See the package documentation for
// the order and the matching rules.
func (s *Store) ListDevices(ctx context.Context, f store.DeviceFilter) ([]store.Device, int64, error) {
	var (
		conds []string
		args  []any
	)
	if !f.IncludeRevoked {
		conds = append(conds, `revoked = 0`)
	}
	if f.Hostname != "" {
		conds = append(conds, `hostname LIKE ? ESCAPE '\'`)
		args = append(args, containsPattern(f.Hostname))
	}
	if f.OS != "" {
		conds = append(conds, `os LIKE ? ESCAPE '\'`)
		args = append(args, containsPattern(f.OS))
	}
	if f.Online != nil {
		conds = append(conds, `online = ?`)
		args = append(args, b2i(*f.Online))
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}

	pageConds, pageArgs := conds, args
	if f.AfterHostname != "" || f.AfterID != "" {
		// The first term is implied by the second; it lets SQLite seek
		// in devices_by_hostname, which it does not for a row value
		// with a COLLATE.
		pageConds = append(pageConds[:len(pageConds):len(pageConds)],
			`hostname >= ? COLLATE NOCASE`, `(hostname COLLATE NOCASE, id) > (?, ?)`)
		pageArgs = append(pageArgs[:len(pageArgs):len(pageArgs)], f.AfterHostname, f.AfterHostname, f.AfterID)
	}
	pageWhere := ""
	if len(pageConds) > 0 {
		pageWhere = " WHERE " + strings.Join(pageConds, " AND ")
	}
	pageArgs = append(pageArgs[:len(pageArgs):len(pageArgs)], limitArg(f.Limit))

	var (
		devs  []store.Device
		total int64
	)
	err := s.read(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM devices`+where, args...).Scan(&total); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+deviceCols+` FROM devices`+pageWhere+
			` ORDER BY hostname COLLATE NOCASE, id LIMIT ?`, pageArgs...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDevice(rows)
			if err != nil {
				return err
			}
			devs = append(devs, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: list devices: %w", err)
	}
	return devs, total, nil
}

// updateDevice runs a single-row UPDATE of devices and maps "no such row"
// to store.ErrNotFound.
func (s *Store) updateDevice(ctx context.Context, op, id, query string, args ...any) error {
	n, err := rowsAffected(s.w.ExecContext(ctx, query, args...))
	if err != nil {
		return fmt.Errorf("sqlite: %s %q: %w", op, id, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s %q: %w", op, id, store.ErrNotFound)
	}
	return nil
}

// DeviceConnected implements store.Store. ErrNotFound if the device was
// never created.
func (s *Store) DeviceConnected(ctx context.Context, h store.DeviceHello) error {
	return s.updateDevice(ctx, "device connected", h.ID,
		`UPDATE devices SET hostname = ?, agent_version = ?, os = ?, arch = ?, online = 1, last_seen = ?
		WHERE id = ?`,
		h.Hostname, h.AgentVersion, h.OS, h.Arch, nanos(h.At), h.ID)
}

// SetOffline implements store.Store. ErrNotFound if the device is unknown.
func (s *Store) SetOffline(ctx context.Context, id string, at time.Time) error {
	return s.updateDevice(ctx, "set offline", id,
		`UPDATE devices SET online = 0, last_seen = ? WHERE id = ?`, nanos(at), id)
}

// TouchDevice implements store.Store. ErrNotFound if the device is unknown.
func (s *Store) TouchDevice(ctx context.Context, id string, at time.Time) error {
	return s.updateDevice(ctx, "touch device", id,
		`UPDATE devices SET last_seen = ? WHERE id = ?`, nanos(at), id)
}

// MarkAllOffline implements store.Store.
func (s *Store) MarkAllOffline(ctx context.Context) (int64, error) {
	n, err := rowsAffected(s.w.ExecContext(ctx, `UPDATE devices SET online = 0 WHERE online <> 0`))
	if err != nil {
		return 0, fmt.Errorf("sqlite: mark all offline: %w", err)
	}
	return n, nil
}

// RevokeDevice implements store.Store. Revoking a revoked device keeps the
// first revocation time.
func (s *Store) RevokeDevice(ctx context.Context, id string, at time.Time) error {
	return s.updateDevice(ctx, "revoke device", id,
		`UPDATE devices SET revoked = 1, revoked_at = CASE WHEN revoked <> 0 THEN revoked_at ELSE ? END
		WHERE id = ?`, nanos(at), id)
}
