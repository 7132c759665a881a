package store

import "errors"

var (
	// ErrNotFound is returned when a record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists is returned when creating a record whose key is taken.
	ErrExists = errors.New("store: already exists")
	// ErrTokenUnknown is returned for an enrollment token that does not
	// exist or whose secret does not match.
	ErrTokenUnknown = errors.New("store: unknown enrollment token")
	// ErrTokenExpired is returned for an enrollment token past its expiry.
	ErrTokenExpired = errors.New("store: enrollment token expired")
	// ErrTokenUsed is returned for an enrollment token with no uses left.
	ErrTokenUsed = errors.New("store: enrollment token already used")
	// ErrLocked is returned by ChargeLogin for a technician whose account
	// is locked after too many wrong sign-ins.
	ErrLocked = errors.New("store: technician is locked out")
	// ErrTOTPReused is returned by UseTOTPStep for a TOTP time step at or
	// before the last one the technician signed in with.
	ErrTOTPReused = errors.New("store: TOTP code already used")
)
