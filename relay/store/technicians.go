package store

import (
	"context"
	"encoding/json"
	"errors"
)

// RoleAdmin is the Role of an admin (desksidev1.Role_ROLE_ADMIN): the
// store keeps at least one enabled admin (ErrLastAdmin).
const RoleAdmin = 4

// ErrLastAdmin is returned when a change would leave no enabled admin.
var ErrLastAdmin = errors.New("store: the last enabled admin")

// TechnicianStore manages technician accounts beyond sign-in (package
// relay/technicians holds the rules; the store makes each step atomic).
type TechnicianStore interface {
	// ListTechnicians returns every technician, by name.
	ListTechnicians(ctx context.Context) ([]Technician, error)
	// EditTechnician reads technician name, calls edit with it and
	// stores what edit left in PasswordHash, Role, TOTPSecret, Disabled,
	// MustChangePassword and Groups (not the name, login state or TOTP
	// step), all in one transaction; it returns the technician as stored.
	// An error of edit is returned (wrapped) and nothing changes; edit
	// may run more than once (a retried transaction), so it only changes
	// its argument.
	// ErrLastAdmin if the technician was an enabled admin and would no
	// longer be while no other enabled admin exists (concurrent edits
	// cannot both pass); ErrNotFound if there is no such technician.
	EditTechnician(ctx context.Context, name string, edit func(*Technician) error) (Technician, error)
	// DeleteTechnician removes a technician and their sessions in one
	// transaction and returns how many sessions ended (audit events keep
	// the name as text). ErrLastAdmin if they are the only enabled admin;
	// ErrNotFound if there is no such technician.
	DeleteTechnician(ctx context.Context, name string) (int64, error)
	// DeleteOtherSessions ends the technician's sessions but the one with
	// token hash keep, and returns how many ended.
	DeleteOtherSessions(ctx context.Context, name string, keep []byte) (int64, error)
}

// EncodeGroups is the stored form of Technician.Groups (a JSON array).
func EncodeGroups(g []string) string {
	if len(g) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(g)
	return string(b)
}

// DecodeGroups reads what EncodeGroups wrote; unreadable text is no
// groups.
func DecodeGroups(s string) []string {
	var g []string
	if json.Unmarshal([]byte(s), &g) != nil || len(g) == 0 {
		return nil
	}
	return g
}

// EnabledAdmin reports whether t counts towards the admins the store
// keeps.
func (t Technician) EnabledAdmin() bool { return t.Role == RoleAdmin && !t.Disabled }
