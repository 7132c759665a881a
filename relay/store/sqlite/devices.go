package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/deskside/deskside/relay/store"
)

const deviceCols = `id, hostname, agent_version, os, arch, cert_serial,
	first_seen, last_seen, online, revoked, revoked_at,
	model, cpu_model, memory_bytes, disk_total_bytes, disk_free_bytes, user_name, grp, unattended, max_sessions,
	os_name, os_version, os_family, os_display, machine_id, disk_used_bytes, pending_serial, endpoint_trust`

type scanner interface{ Scan(dest ...any) error }

func scanDevice(sc scanner) (store.Device, error) {
	var (
		d                           store.Device
		first, last, revokedAt      int64
		online, revoked, unattended int64
		memBytes, diskTot, diskFree int64
		diskUsed                    int64
	)
	err := sc.Scan(&d.ID, &d.Hostname, &d.AgentVersion, &d.OS, &d.Arch, &d.CertSerial,
		&first, &last, &online, &revoked, &revokedAt,
		&d.Model, &d.CPUModel, &memBytes, &diskTot, &diskFree, &d.User, &d.Group, &unattended, &d.MaxSessions,
		&d.OSName, &d.OSVersion, &d.OSFamily, &d.OSDisplay, &d.MachineID, &diskUsed, &d.PendingSerial, &d.EndpointTrust)
	if err != nil {
		return store.Device{}, err
	}
	d.DiskUsedBytes = uint64(diskUsed)
	d.FirstSeen, d.LastSeen, d.RevokedAt = store.FromNanos(first), store.FromNanos(last), store.FromNanos(revokedAt)
	d.Online, d.Revoked, d.UnattendedAllowed = online != 0, revoked != 0, unattended != 0
	d.MemoryBytes, d.DiskTotalBytes, d.DiskFreeBytes = uint64(memBytes), uint64(diskTot), uint64(diskFree)
	return d, nil
}

// CreateDevice implements store.Store.
func (s *Store) CreateDevice(ctx context.Context, d store.Device) error {
	return s.createDevice(ctx, s.w, d)
}

// execer is a connection pool or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Store) createDevice(ctx context.Context, db execer, d store.Device) error {
	_, err := db.ExecContext(ctx, `INSERT INTO devices (`+deviceCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.Hostname, d.AgentVersion, d.OS, d.Arch, d.CertSerial,
		store.Nanos(d.FirstSeen), store.Nanos(d.LastSeen), b2i(d.Online), b2i(d.Revoked), store.Nanos(d.RevokedAt),
		d.Model, d.CPUModel, int64(d.MemoryBytes), int64(d.DiskTotalBytes), int64(d.DiskFreeBytes), d.User, d.Group, b2i(d.UnattendedAllowed), d.MaxSessions,
		d.OSName, d.OSVersion, d.OSFamily, d.OSDisplay, d.MachineID, int64(d.DiskUsedBytes), d.PendingSerial, d.EndpointTrust)
	if isUnique(err) {
		return fmt.Errorf("sqlite: create device %q: %w", d.ID, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create device %q: %w", d.ID, err)
	}
	return nil
}

// EnrollDevice implements store.Store.
func (s *Store) EnrollDevice(ctx context.Context, d store.Device, replaces string) (store.Device, bool, error) {
	var out store.Device
	err := s.write(ctx, func(tx *sql.Tx) error {
		out = d
		if replaces != "" {
			n, err := rowsAffected(tx.ExecContext(ctx, `UPDATE devices SET cert_serial = ?, pending_serial = '', hostname = ?, agent_version = ?, unattended = 0
				WHERE id = ? AND machine_id = ? AND machine_id <> '' AND cert_serial = ? AND revoked = 0 AND online = 0`,
				d.CertSerial, d.Hostname, d.AgentVersion, d.ID, d.MachineID, replaces))
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("device %s changed since it was read (re-enrolled, revoked or connected): %w", d.ID, store.ErrExists)
			}
			out, err = scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE id = ?`, d.ID))
			return err
		}
		if d.MachineID != "" {
			var other string
			err := tx.QueryRowContext(ctx, `SELECT id FROM devices
				WHERE machine_id = ? AND machine_id <> '' AND revoked = 0 LIMIT 1`, d.MachineID).Scan(&other)
			switch {
			case err == nil:
				return fmt.Errorf("machine id %q belongs to device %s: %w", d.MachineID, other, store.ErrExists)
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		return s.createDevice(ctx, tx, d)
	})
	if err != nil {
		return store.Device{}, false, fmt.Errorf("sqlite: enroll device %q: %w", d.ID, err)
	}
	return out, replaces != "", nil
}

// DeviceByMachineID implements store.Store.
func (s *Store) DeviceByMachineID(ctx context.Context, machineID string) (store.Device, error) {
	d, err := scanDevice(s.r.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices
		WHERE machine_id = ? AND machine_id <> '' AND revoked = 0 ORDER BY first_seen, id LIMIT 1`, machineID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Device{}, fmt.Errorf("sqlite: device by machine id %q: %w", machineID, store.ErrNotFound)
	}
	if err != nil {
		return store.Device{}, fmt.Errorf("sqlite: device by machine id %q: %w", machineID, err)
	}
	return d, nil
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

// sortTerms are the ORDER BY terms of each ordering, before the id
// tie-break. Text compares with NOCASE (ASCII case folding). uint64 columns
// hold values above MaxInt64 as negative INTEGERs, so (col < 0, col) is
// their unsigned order. The terms must match the index expressions in
// migrations/ for SQLite to walk an index instead of sorting.
var sortTerms = map[store.DeviceSort][]string{
	store.SortHostname: {`hostname COLLATE NOCASE`},
	store.SortLastSeen: {`last_seen`},
	store.SortOS:       {`os_display COLLATE NOCASE`, `os COLLATE NOCASE`},
	store.SortModel:    {`model COLLATE NOCASE`},
	store.SortCPU:      {`cpu_model COLLATE NOCASE`},
	store.SortMemory:   {`memory_bytes < 0`, `memory_bytes`},
	store.SortDiskFree: {`disk_free_bytes < 0`, `disk_free_bytes`},
	store.SortUser:     {`user_name COLLATE NOCASE`},
	store.SortOnline:   {`online`},
}

// unsignedReal is the SQL REAL value of a uint64 column stored bit-for-bit
// in a signed INTEGER.
func unsignedReal(col string) string {
	return `(CASE WHEN ` + col + ` < 0 THEN ` + col + ` + 18446744073709551616.0 ELSE ` + col + ` * 1.0 END)`
}

// deviceQueries are the statements of a ListDevices call: the count and
// one of two equivalent plans for the page.
type deviceQueries struct {
	count     string // the number matching, ignoring paging
	countArgs []any
	page      string // the page, walking the ordering's index
	pageScan  string // the page, scanning the table and sorting the matches
	pageArgs  []any  // of page and pageScan
}

// scanSortMax is the most matching devices for which a page that runs to
// the end of the matches is read with pageScan.
//
// SQLite reads a LIMITed page by walking the ordering's index, which is
// fast while matches are frequent but, when the page reaches the end of
// the matches (a search for a few devices), visits every device through an
// index-to-table lookup: 10 ms for a free-text query over 10,000 devices.
// Scanning the table and sorting the matches visits each device once, half
// that, but sorting costs about 3 µs a device, so it is used only for few
// matches. The count, read first in the same snapshot, says which case
// applies. Both plans return the same rows: the conformance suite's small
// fleets exercise both.
const scanSortMax = 500

// listQueries builds the statements for f, or fails if f is invalid.
func listQueries(f store.DeviceFilter) (deviceQueries, error) {
	if err := f.Validate(); err != nil {
		return deviceQueries{}, err
	}
	terms, ok := sortTerms[f.SortOrDefault()]
	if !ok {
		return deviceQueries{}, fmt.Errorf("sort %q has no ordering in this backend", string(f.Sort))
	}
	keyset := f.Keyset()

	var (
		conds []string
		args  []any
	)
	if !f.IncludeRevoked {
		conds = append(conds, `revoked = 0`)
	}
	// anyLike is "one of cols contains sub".
	anyLike := func(cols []string, sub string) string {
		ors := make([]string, len(cols))
		for i, col := range cols {
			ors[i] = col + ` LIKE ? ESCAPE '\'`
			args = append(args, store.ContainsPattern(sub))
		}
		return `(` + strings.Join(ors, ` OR `) + `)`
	}
	for _, m := range f.SubstringMatches() {
		conds = append(conds, anyLike(m.Cols, m.Sub))
	}
	if f.Groups != nil {
		if len(f.Groups) == 0 {
			conds = append(conds, `0`)
		} else {
			conds = append(conds, `grp IN (?`+strings.Repeat(`, ?`, len(f.Groups)-1)+`)`)
			for _, g := range f.Groups {
				args = append(args, g)
			}
		}
	}
	if f.Online != nil {
		// The unary + keeps SQLite from answering this from
		// devices_by_online, which would read half the fleet through
		// index-to-table lookups and then sort it.
		conds = append(conds, `+online = ?`)
		args = append(args, b2i(*f.Online))
	}
	switch {
	case f.MemoryBelow == 0:
	case f.MemoryBelow <= math.MaxInt64:
		// Stored values at or above 2^63 are negative and excluded,
		// as they should be.
		conds = append(conds, `memory_bytes > 0`, `memory_bytes < ?`)
		args = append(args, int64(f.MemoryBelow))
	default:
		// The bound is itself negative when stored: every positive value
		// is below it, and negative values compare as their unsigned
		// counterparts do.
		conds = append(conds, `(memory_bytes > 0 OR memory_bytes < ?)`)
		args = append(args, int64(f.MemoryBelow))
	}
	if f.DiskFreeBelowPercent > 0 {
		// df's figure: available against used plus available.
		conds = append(conds, `disk_total_bytes <> 0`,
			unsignedReal(`disk_free_bytes`)+` * 100.0 < ? * (`+unsignedReal(`disk_used_bytes`)+` + `+unsignedReal(`disk_free_bytes`)+`)`)
		args = append(args, f.DiskFreeBelowPercent)
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}

	pageConds, pageArgs := conds, args
	if keyset {
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
	order := make([]string, 0, len(terms)+1)
	for _, t := range append(terms[:len(terms):len(terms)], `id`) {
		if f.Descending {
			t += ` DESC`
		}
		order = append(order, t)
	}
	pageArgs = append(pageArgs[:len(pageArgs):len(pageArgs)], limitArg(f.Limit), int64(f.Offset))
	pageTail := pageWhere + ` ORDER BY ` + strings.Join(order, `, `) + ` LIMIT ? OFFSET ?`
	return deviceQueries{
		count:     `SELECT count(*) FROM devices` + where,
		countArgs: args,
		page:      `SELECT ` + deviceCols + ` FROM devices` + pageTail,
		pageScan:  `SELECT ` + deviceCols + ` FROM devices NOT INDEXED` + pageTail,
		pageArgs:  pageArgs,
	}, nil
}

// ListDevices implements store.Store. See the package documentation for
// the orders and the matching rules.
func (s *Store) ListDevices(ctx context.Context, f store.DeviceFilter) ([]store.Device, int64, error) {
	q, err := listQueries(f)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: list devices: %w", err)
	}
	var (
		devs  []store.Device
		total int64
	)
	err = s.read(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, q.count, q.countArgs...).Scan(&total); err != nil {
			return err
		}
		if total <= int64(f.Offset) {
			return nil // the page is past the last match
		}
		page := q.page
		if f.Limit > 0 && total <= int64(f.Offset)+int64(f.Limit) && total <= scanSortMax &&
			f.AfterHostname == "" && f.AfterID == "" { // where a key falls, the count does not say
			page = q.pageScan
		}
		rows, err := tx.QueryContext(ctx, page, q.pageArgs...)
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
		`UPDATE devices SET hostname = ?, agent_version = ?, os = ?, arch = ?, online = 1, last_seen = ?, connected_at = ?
		WHERE id = ?`,
		h.Hostname, h.AgentVersion, h.OS, h.Arch, store.Nanos(h.At), store.Nanos(h.At), h.ID)
}

// SetOffline implements store.Store. ErrNotFound if the device is unknown.
func (s *Store) SetOffline(ctx context.Context, id string, at, connectedAt time.Time) error {
	if connectedAt.IsZero() {
		return s.updateDevice(ctx, "set offline", id,
			`UPDATE devices SET online = 0, last_seen = ? WHERE id = ?`, store.Nanos(at), id)
	}
	n, err := rowsAffected(s.w.ExecContext(ctx,
		`UPDATE devices SET online = 0, last_seen = ? WHERE id = ? AND connected_at <= ?`, store.Nanos(at), id, store.Nanos(connectedAt)))
	if err != nil {
		return fmt.Errorf("sqlite: set offline %q: %w", id, err)
	}
	if n == 0 {
		// Connected again since, or unknown.
		if _, err := s.GetDevice(ctx, id); err != nil {
			return fmt.Errorf("sqlite: set offline %q: %w", id, err)
		}
	}
	return nil
}

// TouchDevice implements store.Store. ErrNotFound if the device is unknown.
func (s *Store) TouchDevice(ctx context.Context, id string, at time.Time) error {
	return s.updateDevice(ctx, "touch device", id,
		`UPDATE devices SET last_seen = ? WHERE id = ?`, store.Nanos(at), id)
}

// MarkAllOffline implements store.Store.
func (s *Store) MarkAllOffline(ctx context.Context) (int64, error) {
	n, err := rowsAffected(s.w.ExecContext(ctx, `UPDATE devices SET online = 0 WHERE online <> 0`))
	if err != nil {
		return 0, fmt.Errorf("sqlite: mark all offline: %w", err)
	}
	return n, nil
}

// SetPendingSerial implements store.Store.
func (s *Store) SetPendingSerial(ctx context.Context, id, current, pending string) error {
	return s.updateDevice(ctx, "set pending serial", id,
		`UPDATE devices SET pending_serial = ? WHERE id = ? AND cert_serial = ? AND revoked = 0`, pending, id, current)
}

// SetEndpointTrust implements store.Store.
func (s *Store) SetEndpointTrust(ctx context.Context, id string, data []byte) error {
	return s.updateDevice(ctx, "set endpoint trust", id, `UPDATE devices SET endpoint_trust = ? WHERE id = ?`, data, id)
}

// ConfirmSerial implements store.Store.
func (s *Store) ConfirmSerial(ctx context.Context, id, serial string) error {
	return s.updateDevice(ctx, "confirm serial", id,
		`UPDATE devices SET cert_serial = pending_serial, pending_serial = ''
		WHERE id = ? AND pending_serial = ? AND pending_serial <> '' AND revoked = 0`, id, serial)
}

// RevokeDevice implements store.Store. Revoking a revoked device keeps the
// first revocation time.
func (s *Store) RevokeDevice(ctx context.Context, id string, at time.Time) error {
	return s.updateDevice(ctx, "revoke device", id,
		`UPDATE devices SET revoked = 1, revoked_at = CASE WHEN revoked <> 0 THEN revoked_at ELSE ? END
		WHERE id = ?`, store.Nanos(at), id)
}
