package postgres

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/relay/store"
)

// CreateEnrollToken implements store.Store. ErrExists if the id is taken.
func (s *Store) CreateEnrollToken(ctx context.Context, t store.EnrollToken) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO enroll_tokens (id, secret_hash, expires_at, uses, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		t.ID, nonNil(t.SecretHash), store.Nanos(t.ExpiresAt), t.Uses, t.CreatedBy, store.Nanos(t.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("postgres: create enroll token %q: %w", t.ID, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: create enroll token %q: %w", t.ID, err)
	}
	return nil
}

// ConsumeEnrollToken implements store.Store. The checks run in this order:
// unknown id or wrong secret (compared in constant time), then expiry (a
// token is expired from its ExpiresAt on), then uses left. The token row
// is read FOR UPDATE and decremented in the same transaction, so
// concurrent consumers of a token with n uses left, on any number of
// relays, succeed exactly n times.
func (s *Store) ConsumeEnrollToken(ctx context.Context, id string, secretHash []byte, now time.Time) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		var (
			stored    []byte
			expiresAt int64
			uses      int64
		)
		err := tx.QueryRow(ctx, `SELECT secret_hash, expires_at, uses FROM enroll_tokens WHERE id = $1 FOR UPDATE`, id).
			Scan(&stored, &expiresAt, &uses)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrTokenUnknown
		}
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(stored, secretHash) != 1 {
			return store.ErrTokenUnknown
		}
		if !now.Before(store.FromNanos(expiresAt)) {
			return store.ErrTokenExpired
		}
		if uses <= 0 {
			return store.ErrTokenUsed
		}
		_, err = tx.Exec(ctx, `UPDATE enroll_tokens SET uses = uses - 1 WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: consume enroll token %q: %w", id, err)
	}
	return nil
}

// CreateTechnician implements store.Store.
func (s *Store) CreateTechnician(ctx context.Context, t store.Technician) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO technicians
		(name, password_hash, role, totp_secret, failed_logins, locked_until, created_at, totp_last_step,
		 disabled, must_change_password, device_groups, email)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		t.Name, t.PasswordHash, t.Role, t.TOTPSecret, t.FailedLogins, store.Nanos(t.LockedUntil), store.Nanos(t.CreatedAt), t.TOTPLastStep,
		t.Disabled, t.MustChangePassword, store.EncodeGroups(t.Groups), t.Email)
	if isUnique(err) {
		return fmt.Errorf("postgres: create technician %q: %w", t.Name, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: create technician %q: %w", t.Name, err)
	}
	return nil
}

// GetTechnician implements store.Store.
func (s *Store) GetTechnician(ctx context.Context, name string) (store.Technician, error) {
	t, err := scanTechnician(s.pool.QueryRow(ctx, `SELECT `+technicianCols+` FROM technicians WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Technician{}, fmt.Errorf("postgres: get technician %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.Technician{}, fmt.Errorf("postgres: get technician %q: %w", name, err)
	}
	return t, nil
}

// CountTechnicians implements store.Store.
func (s *Store) CountTechnicians(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM technicians`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count technicians: %w", err)
	}
	return n, nil
}

// updateTechnician runs a single-row UPDATE of technicians and maps "no
// such row" to store.ErrNotFound.
func (s *Store) updateTechnician(ctx context.Context, op, name, query string, args ...any) error {
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("postgres: %s %q: %w", op, name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: %s %q: %w", op, name, store.ErrNotFound)
	}
	return nil
}

// SetLoginState implements store.Store. ErrNotFound if the technician is
// unknown.
func (s *Store) SetLoginState(ctx context.Context, name string, failed int, lockedUntil time.Time) error {
	return s.updateTechnician(ctx, "set login state", name,
		`UPDATE technicians SET failed_logins = $1, locked_until = $2 WHERE name = $3`,
		failed, store.Nanos(lockedUntil), name)
}

// UpdateTechnician implements store.Store. ErrNotFound if the technician is
// unknown.
func (s *Store) UpdateTechnician(ctx context.Context, t store.Technician) error {
	return s.updateTechnician(ctx, "update technician", t.Name,
		`UPDATE technicians SET password_hash = $1, role = $2, totp_secret = $3 WHERE name = $4`,
		t.PasswordHash, t.Role, t.TOTPSecret, t.Name)
}

// CreateSession implements store.Store. ErrExists if the token hash is
// taken, ErrNotFound if the technician is unknown.
func (s *Store) CreateSession(ctx context.Context, se store.Session) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (token_hash, technician, created_at, expires_at)
		VALUES ($1, $2, $3, $4)`, nonNil(se.TokenHash), se.Technician, store.Nanos(se.CreatedAt), store.Nanos(se.ExpiresAt))
	switch {
	case isUnique(err):
		return fmt.Errorf("postgres: create session: %w", store.ErrExists)
	case isForeignKey(err):
		return fmt.Errorf("postgres: create session for %q: technician %w", se.Technician, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("postgres: create session: %w", err)
	}
	return nil
}

// GetSession implements store.Store.
func (s *Store) GetSession(ctx context.Context, tokenHash []byte) (store.Session, error) {
	var (
		se               store.Session
		created, expires int64
	)
	err := s.pool.QueryRow(ctx, `SELECT token_hash, technician, created_at, expires_at FROM sessions WHERE token_hash = $1`,
		nonNil(tokenHash)).Scan(&se.TokenHash, &se.Technician, &created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Session{}, fmt.Errorf("postgres: get session: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("postgres: get session: %w", err)
	}
	se.CreatedAt, se.ExpiresAt = store.FromNanos(created), store.FromNanos(expires)
	return se, nil
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, nonNil(tokenHash)); err != nil {
		return fmt.Errorf("postgres: delete session: %w", err)
	}
	return nil
}

// ChargeLogin implements store.Store: one UPDATE … RETURNING, so the
// count cannot be raced (the row is locked while it is updated, and a concurrent update re-checks the lock on the new row).
func (s *Store) ChargeLogin(ctx context.Context, name string, now time.Time, max int, lock time.Duration) (store.LoginCharge, error) {
	t, err := scanTechnician(s.pool.QueryRow(ctx, `UPDATE technicians SET
			failed_logins = CASE WHEN failed_logins + 1 >= $1 THEN 0 ELSE failed_logins + 1 END,
			locked_until  = CASE WHEN failed_logins + 1 >= $1 THEN $2 ELSE locked_until END
		WHERE name = $3 AND locked_until <= $4
		RETURNING `+technicianCols,
		max, store.Nanos(now.Add(lock)), name, store.Nanos(now)))
	if errors.Is(err, pgx.ErrNoRows) {
		cur, gerr := s.GetTechnician(ctx, name)
		if gerr != nil {
			return store.LoginCharge{}, gerr
		}
		return store.LoginCharge{Technician: cur}, fmt.Errorf("postgres: charge login of %q: %w", name, store.ErrLocked)
	}
	if err != nil {
		return store.LoginCharge{}, fmt.Errorf("postgres: charge login of %q: %w", name, err)
	}
	c := store.LoginCharge{Technician: t, Failures: t.FailedLogins}
	if now.Before(t.LockedUntil) {
		c.Failures, c.Locked = max, true
	}
	return c, nil
}

// UseTOTPStep implements store.Store.
func (s *Store) UseTOTPStep(ctx context.Context, name string, step int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE technicians SET totp_last_step = $1 WHERE name = $2 AND totp_last_step < $1`, step, name)
	if err != nil {
		return fmt.Errorf("postgres: use TOTP step of %q: %w", name, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := s.GetTechnician(ctx, name); err != nil {
		return err
	}
	return fmt.Errorf("postgres: use TOTP step of %q: %w", name, store.ErrTOTPReused)
}

// DeleteTechnicianSessions implements store.Store.
func (s *Store) DeleteTechnicianSessions(ctx context.Context, name string) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE technician = $1`, name)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete sessions of %q: %w", name, err)
	}
	return tag.RowsAffected(), nil
}
