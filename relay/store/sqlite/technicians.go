package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/deskside/deskside/relay/store"
)

var _ store.TechnicianStore = (*Store)(nil)

// technicianCols are the columns scanTechnician reads, in its order.
const technicianCols = `name, password_hash, role, totp_secret, failed_logins, locked_until, created_at, totp_last_step,
	disabled, must_change_password, device_groups, email`

// scanTechnician reads one row of technicianCols.
func scanTechnician(row interface{ Scan(...any) error }) (store.Technician, error) {
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
	rows, err := s.r.QueryContext(ctx, `SELECT `+technicianCols+` FROM technicians ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list technicians: %w", err)
	}
	defer rows.Close()
	var out []store.Technician
	for rows.Next() {
		t, err := scanTechnician(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list technicians: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list technicians: %w", err)
	}
	return out, nil
}

// otherEnabledAdmins counts the enabled admins but name.
func otherEnabledAdmins(ctx context.Context, tx *sql.Tx, name string) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM technicians WHERE role = ? AND disabled = 0 AND name <> ?`,
		store.RoleAdmin, name).Scan(&n)
	return n, err
}

// EditTechnician implements store.TechnicianStore. The single writer
// connection runs it as one transaction, so the last-admin check cannot
// be raced.
func (s *Store) EditTechnician(ctx context.Context, name string, edit func(*store.Technician) error) (store.Technician, error) {
	var out store.Technician
	err := s.write(ctx, func(tx *sql.Tx) error {
		t, err := scanTechnician(tx.QueryRowContext(ctx, `SELECT `+technicianCols+` FROM technicians WHERE name = ?`, name))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		} else if err != nil {
			return err
		}
		was := t.EnabledAdmin()
		if err := edit(&t); err != nil {
			return err
		}
		if was && !t.EnabledAdmin() {
			if n, err := otherEnabledAdmins(ctx, tx, name); err != nil {
				return err
			} else if n == 0 {
				return store.ErrLastAdmin
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE technicians SET password_hash = ?, role = ?, totp_secret = ?,
			disabled = ?, must_change_password = ?, device_groups = ?, email = ? WHERE name = ?`,
			t.PasswordHash, t.Role, t.TOTPSecret, t.Disabled, t.MustChangePassword, store.EncodeGroups(t.Groups), t.Email, name)
		t.Name = name
		out = t
		return err
	})
	if err != nil {
		return store.Technician{}, fmt.Errorf("sqlite: edit technician %q: %w", name, err)
	}
	return out, nil
}

// DeleteTechnician implements store.TechnicianStore.
func (s *Store) DeleteTechnician(ctx context.Context, name string) (int64, error) {
	var ended int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		t, err := scanTechnician(tx.QueryRowContext(ctx, `SELECT `+technicianCols+` FROM technicians WHERE name = ?`, name))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		} else if err != nil {
			return err
		}
		if t.EnabledAdmin() {
			if n, err := otherEnabledAdmins(ctx, tx, name); err != nil {
				return err
			} else if n == 0 {
				return store.ErrLastAdmin
			}
		}
		if ended, err = rowsAffected(tx.ExecContext(ctx, `DELETE FROM sessions WHERE technician = ?`, name)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM technicians WHERE name = ?`, name)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete technician %q: %w", name, err)
	}
	return ended, nil
}

// DeleteOtherSessions implements store.TechnicianStore.
func (s *Store) DeleteOtherSessions(ctx context.Context, name string, keep []byte) (int64, error) {
	n, err := rowsAffected(s.w.ExecContext(ctx, `DELETE FROM sessions WHERE technician = ? AND token_hash <> ?`, name, nonNil(keep)))
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete other sessions of %q: %w", name, err)
	}
	return n, nil
}
