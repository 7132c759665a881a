package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deskside/deskside/relay/store"
)

const deviceCols = `id, hostname, agent_version, os, arch, cert_serial,
	first_seen, last_seen, online, revoked, revoked_at,
	model, cpu_model, memory_bytes, disk_total_bytes, disk_free_bytes, user_name, group_name, unattended, max_sessions,
	os_name, os_version, os_family, os_display, machine_id, disk_used_bytes, pending_serial, endpoint_trust`

func scanDevice(row pgx.Row) (store.Device, error) {
	var (
		d                      store.Device
		first, last, revokedAt int64
	)
	err := row.Scan(&d.ID, &d.Hostname, &d.AgentVersion, &d.OS, &d.Arch, &d.CertSerial,
		&first, &last, &d.Online, &d.Revoked, &revokedAt,
		&d.Model, &d.CPUModel, &d.MemoryBytes, &d.DiskTotalBytes, &d.DiskFreeBytes, &d.User, &d.Group, &d.UnattendedAllowed, &d.MaxSessions,
		&d.OSName, &d.OSVersion, &d.OSFamily, &d.OSDisplay, &d.MachineID, &d.DiskUsedBytes, &d.PendingSerial, &d.EndpointTrust)
	if err != nil {
		return store.Device{}, err
	}
	d.FirstSeen, d.LastSeen, d.RevokedAt = store.FromNanos(first), store.FromNanos(last), store.FromNanos(revokedAt)
	return d, nil
}

// CreateDevice implements store.Store.
func (s *Store) CreateDevice(ctx context.Context, d store.Device) error {
	return createDevice(ctx, s.pool, d)
}

// execer is a connection pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func createDevice(ctx context.Context, db execer, d store.Device) error {
	_, err := db.Exec(ctx, `INSERT INTO devices (`+deviceCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)`,
		d.ID, d.Hostname, d.AgentVersion, d.OS, d.Arch, d.CertSerial,
		store.Nanos(d.FirstSeen), store.Nanos(d.LastSeen), d.Online, d.Revoked, store.Nanos(d.RevokedAt),
		d.Model, d.CPUModel, d.MemoryBytes, d.DiskTotalBytes, d.DiskFreeBytes, d.User, d.Group, d.UnattendedAllowed, d.MaxSessions,
		d.OSName, d.OSVersion, d.OSFamily, d.OSDisplay, d.MachineID, d.DiskUsedBytes, d.PendingSerial, d.EndpointTrust)
	if isUnique(err) {
		return fmt.Errorf("postgres: create device %q: %w", d.ID, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: create device %q: %w", d.ID, err)
	}
	return nil
}

// EnrollDevice implements store.Store.
func (s *Store) EnrollDevice(ctx context.Context, d store.Device, replaces string) (store.Device, bool, error) {
	var out store.Device
	err := s.write(ctx, func(tx pgx.Tx) error {
		out = d
		if replaces != "" {
			var err error
			out, err = scanDevice(tx.QueryRow(ctx, `UPDATE devices SET cert_serial = $1, pending_serial = '', hostname = $2, agent_version = $3, unattended = false
				WHERE id = $4 AND machine_id = $5 AND machine_id <> '' AND cert_serial = $6 AND NOT revoked AND NOT online
				RETURNING `+deviceCols, d.CertSerial, d.Hostname, d.AgentVersion, d.ID, d.MachineID, replaces))
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("device %s changed since it was read (re-enrolled, revoked or connected): %w", d.ID, store.ErrExists)
			}
			return err
		}
		if d.MachineID == "" {
			return createDevice(ctx, tx, d)
		}
		// Two first enrollments of one machine: the lock makes the second
		// see the first's row.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('deskside.machine_id:' || $1))`, d.MachineID); err != nil {
			return err
		}
		var other string
		err := tx.QueryRow(ctx, `SELECT id FROM devices
			WHERE machine_id = $1 AND machine_id <> '' AND NOT revoked LIMIT 1`, d.MachineID).Scan(&other)
		switch {
		case err == nil:
			return fmt.Errorf("machine id %q belongs to device %s: %w", d.MachineID, other, store.ErrExists)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		return createDevice(ctx, tx, d)
	})
	if err != nil {
		return store.Device{}, false, fmt.Errorf("postgres: enroll device %q: %w", d.ID, err)
	}
	return out, replaces != "", nil
}

// DeviceByMachineID implements store.Store.
func (s *Store) DeviceByMachineID(ctx context.Context, machineID string) (store.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices
		WHERE machine_id = $1 AND machine_id <> '' AND NOT revoked ORDER BY first_seen, id LIMIT 1`, machineID))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Device{}, fmt.Errorf("postgres: device by machine id %q: %w", machineID, store.ErrNotFound)
	}
	if err != nil {
		return store.Device{}, fmt.Errorf("postgres: device by machine id %q: %w", machineID, err)
	}
	return d, nil
}

// GetDevice implements store.Store.
func (s *Store) GetDevice(ctx context.Context, id string) (store.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Device{}, fmt.Errorf("postgres: get device %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Device{}, fmt.Errorf("postgres: get device %q: %w", id, err)
	}
	return d, nil
}

// sortTerms are the ORDER BY terms of each ordering, before the id
// tie-break. lower() of a COLLATE "C" column folds ASCII letters only and
// compares bytes; uint64 columns are numeric and order as unsigned numbers.
// The terms must match the index expressions in migrations/ for
// PostgreSQL to read a page in index order.
var sortTerms = map[store.DeviceSort][]string{
	store.SortHostname: {`lower(hostname)`},
	store.SortLastSeen: {`last_seen`},
	store.SortOS:       {`lower(os_display)`, `lower(os)`},
	store.SortModel:    {`lower(model)`},
	store.SortCPU:      {`lower(cpu_model)`},
	store.SortMemory:   {`memory_bytes`},
	store.SortDiskFree: {`disk_free_bytes`},
	store.SortUser:     {`lower(user_name)`},
	store.SortOnline:   {`online`},
}

// params collects the arguments of a statement and names their
// placeholders.
type params []any

// add appends v and returns its placeholder, $n.
func (p *params) add(v any) string {
	*p = append(*p, v)
	return "$" + strconv.Itoa(len(*p))
}

// deviceQueries are the statements of a ListDevices call.
type deviceQueries struct {
	count     string // the number matching, ignoring paging
	countArgs []any
	page      string
	pageArgs  []any
}

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
		args  params
	)
	if !f.IncludeRevoked {
		conds = append(conds, `NOT revoked`)
	}
	// ILIKE under COLLATE "C" folds ASCII letters only, like the orderings.
	ilike := func(col, placeholder string) string {
		return col + ` ILIKE ` + placeholder + ` COLLATE "C" ESCAPE '\'`
	}
	// anyLike is "one of cols contains sub".
	anyLike := func(cols []string, sub string) string {
		p := args.add(store.ContainsPattern(sub))
		ors := make([]string, len(cols))
		for i, col := range cols {
			ors[i] = ilike(col, p)
		}
		return `(` + strings.Join(ors, ` OR `) + `)`
	}
	for _, m := range f.SubstringMatches() {
		conds = append(conds, anyLike(m.Cols, m.Sub))
	}
	if f.Groups != nil {
		// An empty array matches nothing.
		conds = append(conds, `group_name = ANY(`+args.add(f.Groups)+`::text[])`)
	}
	if f.Online != nil {
		conds = append(conds, `online = `+args.add(*f.Online))
	}
	if f.MemoryBelow > 0 {
		conds = append(conds, `memory_bytes > 0`, `memory_bytes < `+args.add(f.MemoryBelow)+`::numeric`)
	}
	if f.DiskFreeBelowPercent > 0 {
		conds = append(conds, `disk_total_bytes > 0`,
			// df's figure: available against used plus available.
			`disk_free_bytes::float8 * 100 < `+args.add(f.DiskFreeBelowPercent)+`::float8 * (disk_used_bytes::float8 + disk_free_bytes::float8)`)
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, ` AND `)
	}
	q := deviceQueries{
		count:     `SELECT count(*) FROM devices` + where,
		countArgs: args,
	}

	pageArgs := append(params(nil), args...)
	pageConds := conds[:len(conds):len(conds)]
	if keyset {
		// A row comparison against the index's own expressions: an index
		// range scan of devices_by_hostname.
		pageConds = append(pageConds, `(lower(hostname), id) > (lower(`+pageArgs.add(f.AfterHostname)+`::text COLLATE "C"), `+
			pageArgs.add(f.AfterID)+`::text COLLATE "C")`)
	}
	pageWhere := ""
	if len(pageConds) > 0 {
		pageWhere = ` WHERE ` + strings.Join(pageConds, ` AND `)
	}
	dir := ""
	if f.Descending {
		dir = ` DESC`
	}
	order := make([]string, 0, len(terms)+1)
	for _, t := range append(terms[:len(terms):len(terms)], `id`) {
		order = append(order, t+dir)
	}
	q.page = `SELECT ` + deviceCols + ` FROM devices` + pageWhere +
		` ORDER BY ` + strings.Join(order, `, `) +
		` LIMIT ` + pageArgs.add(limitArg(f.Limit)) + ` OFFSET ` + pageArgs.add(int64(f.Offset))
	q.pageArgs = pageArgs
	return q, nil
}

// ListDevices implements store.Store. See the package documentation for
// the orders and the matching rules.
func (s *Store) ListDevices(ctx context.Context, f store.DeviceFilter) ([]store.Device, int64, error) {
	q, err := listQueries(f)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: list devices: %w", err)
	}
	var (
		devs  []store.Device
		total int64
	)
	err = s.snapshot(ctx, func(tx pgx.Tx) error {
		devs = nil
		if err := tx.QueryRow(ctx, q.count, q.countArgs...).Scan(&total); err != nil {
			return err
		}
		if total <= int64(f.Offset) {
			return nil // the page is past the last match
		}
		rows, err := tx.Query(ctx, q.page, q.pageArgs...)
		if err != nil {
			return err
		}
		devs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Device, error) { return scanDevice(r) })
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: list devices: %w", err)
	}
	return devs, total, nil
}

// updateDevice runs a single-row UPDATE of devices and maps "no such row"
// to store.ErrNotFound.
func (s *Store) updateDevice(ctx context.Context, op, id, query string, args ...any) error {
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("postgres: %s %q: %w", op, id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: %s %q: %w", op, id, store.ErrNotFound)
	}
	return nil
}

// DeviceConnected implements store.Store. ErrNotFound if the device was
// never created.
func (s *Store) DeviceConnected(ctx context.Context, h store.DeviceHello) error {
	return s.updateDevice(ctx, "device connected", h.ID,
		`UPDATE devices SET hostname = $1, agent_version = $2, os = $3, arch = $4, online = true, last_seen = $5, connected_at = $5
		WHERE id = $6`,
		h.Hostname, h.AgentVersion, h.OS, h.Arch, store.Nanos(h.At), h.ID)
}

// SetOffline implements store.Store. ErrNotFound if the device is unknown.
func (s *Store) SetOffline(ctx context.Context, id string, at, connectedAt time.Time) error {
	if connectedAt.IsZero() {
		return s.updateDevice(ctx, "set offline", id,
			`UPDATE devices SET online = false, last_seen = $1 WHERE id = $2`, store.Nanos(at), id)
	}
	tag, err := s.pool.Exec(ctx,
		`UPDATE devices SET online = false, last_seen = $1 WHERE id = $2 AND connected_at <= $3`, store.Nanos(at), id, store.Nanos(connectedAt))
	if err != nil {
		return fmt.Errorf("postgres: set offline %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		// Connected again since, or unknown.
		if _, err := s.GetDevice(ctx, id); err != nil {
			return fmt.Errorf("postgres: set offline %q: %w", id, err)
		}
	}
	return nil
}

// TouchDevice implements store.Store. ErrNotFound if the device is unknown.
func (s *Store) TouchDevice(ctx context.Context, id string, at time.Time) error {
	return s.updateDevice(ctx, "touch device", id,
		`UPDATE devices SET last_seen = $1 WHERE id = $2`, store.Nanos(at), id)
}

// MarkAllOffline implements store.Store.
func (s *Store) MarkAllOffline(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET online = false WHERE online`)
	if err != nil {
		return 0, fmt.Errorf("postgres: mark all offline: %w", err)
	}
	return tag.RowsAffected(), nil
}

// SetPendingSerial implements store.Store.
func (s *Store) SetPendingSerial(ctx context.Context, id, current, pending string) error {
	return s.updateDevice(ctx, "set pending serial", id,
		`UPDATE devices SET pending_serial = $1 WHERE id = $2 AND cert_serial = $3 AND NOT revoked`, pending, id, current)
}

// SetEndpointTrust implements store.Store.
func (s *Store) SetEndpointTrust(ctx context.Context, id string, data []byte) error {
	return s.updateDevice(ctx, "set endpoint trust", id, `UPDATE devices SET endpoint_trust = $1 WHERE id = $2`, data, id)
}

// ConfirmSerial implements store.Store.
func (s *Store) ConfirmSerial(ctx context.Context, id, serial string) error {
	return s.updateDevice(ctx, "confirm serial", id,
		`UPDATE devices SET cert_serial = pending_serial, pending_serial = ''
		WHERE id = $1 AND pending_serial = $2 AND pending_serial <> '' AND NOT revoked`, id, serial)
}

// RevokeDevice implements store.Store. Revoking a revoked device keeps the
// first revocation time.
func (s *Store) RevokeDevice(ctx context.Context, id string, at time.Time) error {
	return s.updateDevice(ctx, "revoke device", id,
		`UPDATE devices SET revoked = true, revoked_at = CASE WHEN revoked THEN revoked_at ELSE $1 END
		WHERE id = $2`, store.Nanos(at), id)
}
