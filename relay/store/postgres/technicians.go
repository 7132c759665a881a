package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/relay/store"
)

var _ store.TechnicianStore = (*Store)(nil)

// technicianCols are the columns scanTechnician reads, in its order.
const technicianCols = `name, password_hash, role, totp_secret, failed_logins, locked_until, created_at, totp_last_step,
	disabled, must_change_password, device_groups, email`

// scanTechnician reads one row of technicianCols.
func scanTechnician(row pgx.Row) (store.Technician, error) {
	var (
		t               store.Technician
		locked, created int64
		groups          string
	)
	err := row.Scan(&t.Name, &t.PasswordHash, &t.Role, &t.TOTPSecret, &t.FailedLogins, &locked, &created, &t.TOTPLastStep,
		&t.Disabled, &t.MustChangePassword, &groups, &t.Email)
	if err != nil {
		return store.Technician{}, err
	}
	t.LockedUntil, t.CreatedAt, t.Groups = store.FromNanos(locked), store.FromNanos(created), store.DecodeGroups(groups)
	return t, nil
}

// ListTechnicians implements store.TechnicianStore.
func (s *Store) ListTechnicians(ctx context.Context) ([]store.Technician, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+technicianCols+` FROM technicians ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list technicians: %w", err)
	}
	defer rows.Close()
	var out []store.Technician
	for rows.Next() {
		t, err := scanTechnician(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list technicians: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list technicians: %w", err)
	}
	return out, nil
}

// lockTechnician locks the enabled admins' rows, then name's (always in
// that order, so concurrent edits cannot deadlock), and returns name's
// row and how many other enabled admins there are. Two transactions that
// would each remove an admin run one after the other: the second sees
// the first's change when its lock is granted.
func lockTechnician(ctx context.Context, tx pgx.Tx, name string) (store.Technician, int, error) {
	rows, err := tx.Query(ctx, `SELECT name FROM technicians WHERE role = $1 AND NOT disabled ORDER BY name FOR UPDATE`, store.RoleAdmin)
	if err != nil {
		return store.Technician{}, 0, err
	}
	admins, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return store.Technician{}, 0, err
	}
	others := 0
	for _, a := range admins {
		if a != name {
			others++
		}
	}
	t, err := scanTechnician(tx.QueryRow(ctx, `SELECT `+technicianCols+` FROM technicians WHERE name = $1 FOR UPDATE`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, 0, store.ErrNotFound
	}
	return t, others, err
}

// EditTechnician implements store.TechnicianStore. edit may run more
// than once when the transaction is retried.
func (s *Store) EditTechnician(ctx context.Context, name string, edit func(*store.Technician) error) (store.Technician, error) {
	var out store.Technician
	err := s.write(ctx, func(tx pgx.Tx) error {
		t, others, err := lockTechnician(ctx, tx, name)
		if err != nil {
			return err
		}
		was := t.EnabledAdmin()
		if err := edit(&t); err != nil {
			return err
		}
		if was && !t.EnabledAdmin() && others == 0 {
			return store.ErrLastAdmin
		}
		_, err = tx.Exec(ctx, `UPDATE technicians SET password_hash = $1, role = $2, totp_secret = $3,
			disabled = $4, must_change_password = $5, device_groups = $6, email = $7 WHERE name = $8`,
			t.PasswordHash, t.Role, t.TOTPSecret, t.Disabled, t.MustChangePassword, store.EncodeGroups(t.Groups), t.Email, name)
		t.Name = name
		out = t
		return err
	})
	if err != nil {
		return store.Technician{}, fmt.Errorf("postgres: edit technician %q: %w", name, err)
	}
	return out, nil
}

// DeleteTechnician implements store.TechnicianStore.
func (s *Store) DeleteTechnician(ctx context.Context, name string) (int64, error) {
	var ended int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		t, others, err := lockTechnician(ctx, tx, name)
		if err != nil {
			return err
		}
		if t.EnabledAdmin() && others == 0 {
			return store.ErrLastAdmin
		}
		tag, err := tx.Exec(ctx, `DELETE FROM sessions WHERE technician = $1`, name)
		if err != nil {
			return err
		}
		ended = tag.RowsAffected()
		_, err = tx.Exec(ctx, `DELETE FROM technicians WHERE name = $1`, name)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: delete technician %q: %w", name, err)
	}
	return ended, nil
}

// DeleteOtherSessions implements store.TechnicianStore.
func (s *Store) DeleteOtherSessions(ctx context.Context, name string, keep []byte) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE technician = $1 AND token_hash <> $2`, name, nonNil(keep))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete other sessions of %q: %w", name, err)
	}
	return tag.RowsAffected(), nil
}
