// Package technicians holds the rules of the relay's technician accounts:
// which names, roles and groups an account may have, what a new password
// must be, and the lifecycle an admin drives (create, change role and
// groups, disable and enable, delete, reset the password) besides the
// technician's own password change. The relay's RPC adapter
// (relay/server) authorizes the caller and audits each change; this
// package decides and makes each step atomic through the store.
//
// Rules kept here whoever calls:
//   - a new password has at least MinPasswordLength characters, is not
//     the technician's name (nor contains it) and is not a common one;
//     it is stored as an argon2id hash (relay/auth);
//   - a password an admin sets (creation, reset) must be changed at the
//     next sign-in;
//   - nobody disables or deletes their own account, and the store keeps
//     one enabled admin (store.ErrLastAdmin);
//   - disabling and deleting end the technician's sessions at once.
package technicians

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/store"
)

// Roles, as the values of desksidev1.Role (the store keeps ints).
const (
	RoleTier1 = 1
	RoleTier2 = 2
	RoleTier3 = 3
	RoleAdmin = store.RoleAdmin
)

// Limits of an account's fields.
const (
	MinPasswordLength = 12
	MaxPasswordBytes  = 1024
	MaxNameLength     = 64
	MaxGroups         = 32
	MaxGroupLength    = 64
)

// Errors the RPC adapter maps to status codes. The wrapped messages say
// what was wrong.
var (
	// ErrInvalid: a malformed name, role or group.
	ErrInvalid = errors.New("invalid")
	// ErrWeakPassword: the new password breaks a password rule.
	ErrWeakPassword = errors.New("weak password")
	// ErrNotFound: no such technician.
	ErrNotFound = errors.New("no such technician")
	// ErrExists: the name is taken.
	ErrExists = errors.New("name taken")
	// ErrSelf: disabling or deleting one's own account.
	ErrSelf = errors.New("own account")
	// ErrLastAdmin: the change would leave no enabled admin.
	ErrLastAdmin = errors.New("last admin")
	// ErrWrongPassword: the current password given is wrong.
	ErrWrongPassword = errors.New("wrong current password")
	// ErrLocked: the account is locked after wrong passwords.
	ErrLocked = errors.New("locked")
)

// Store is what the accounts need of the relay's store.
type Store interface {
	store.TechnicianStore
	CreateTechnician(ctx context.Context, t store.Technician) error
	GetTechnician(ctx context.Context, name string) (store.Technician, error)
	SetLoginState(ctx context.Context, name string, failed int, lockedUntil time.Time) error
	ChargeLogin(ctx context.Context, name string, now time.Time, max int, lock time.Duration) (store.LoginCharge, error)
	DeleteTechnicianSessions(ctx context.Context, name string) (int64, error)
}

var _ Store = store.Store(nil)

// Accounts manages technician accounts on a store.
type Accounts struct {
	store Store
	now   func() time.Time
	// Verify checks a password against its hash (auth.VerifyPassword;
	// tests count the calls).
	Verify func(hash, pw string) (bool, error)
}

// New returns the accounts on st; now is the clock (nil: time.Now).
func New(st Store, now func() time.Time) *Accounts {
	if now == nil {
		now = time.Now
	}
	return &Accounts{store: st, now: now, Verify: auth.VerifyPassword}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]*$`)

// CheckName checks a new technician's name: letters, digits and . _ - @,
// starting with a letter or digit, at most MaxNameLength bytes.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLength || !nameRE.MatchString(name) {
		return fmt.Errorf("%w: name %q: use letters, digits and . _ - @ (up to %d, starting with a letter or digit)", ErrInvalid, wire.CleanString(name, MaxNameLength), MaxNameLength)
	}
	return nil
}

// RoleName names a role as the CLI spells it.
func RoleName(role int) string {
	switch role {
	case RoleTier1:
		return "tier1"
	case RoleTier2:
		return "tier2"
	case RoleTier3:
		return "tier3"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("role %d", role)
}

// CheckRole checks that role is one of the four.
func CheckRole(role int) error {
	if role < RoleTier1 || role > RoleAdmin {
		return fmt.Errorf("%w: a role is required: tier1, tier2, tier3 or admin", ErrInvalid)
	}
	return nil
}

// CleanGroups returns groups trimmed, printable, sorted and without
// duplicates; ErrInvalid for too many or too long ones.
func CleanGroups(groups []string) ([]string, error) {
	if len(groups) > MaxGroups {
		return nil, fmt.Errorf("%w: %d groups; at most %d", ErrInvalid, len(groups), MaxGroups)
	}
	var out []string
	for _, g := range groups {
		if utf8.RuneCountInString(g) > MaxGroupLength {
			return nil, fmt.Errorf("%w: group %q is longer than %d characters", ErrInvalid, wire.CleanString(g, MaxGroupLength), MaxGroupLength)
		}
		if g = strings.TrimSpace(wire.CleanString(g, MaxGroupLength)); g != "" {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

//go:embed common-passwords.txt
var commonText string

// common is the list of passwords refused as too common (lower case).
var common = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(commonText, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			m[strings.ToLower(l)] = true
		}
	}
	return m
}()

// CheckPassword checks a new password of technician name: at least
// MinPasswordLength characters (at most MaxPasswordBytes bytes), not the
// name and not containing it, not one character repeated, not in the
// list of common passwords.
func CheckPassword(name, pw string) error {
	n := utf8.RuneCountInString(pw)
	lower := strings.ToLower(pw)
	switch {
	case n < MinPasswordLength:
		return fmt.Errorf("%w: the new password has %d characters; it must have at least %d characters", ErrWeakPassword, n, MinPasswordLength)
	case len(pw) > MaxPasswordBytes:
		return fmt.Errorf("%w: the new password is longer than %d bytes", ErrWeakPassword, MaxPasswordBytes)
	case name != "" && strings.Contains(lower, strings.ToLower(name)) && (len(name) >= 4 || lower == strings.ToLower(name)):
		return fmt.Errorf("%w: the new password contains the technician's name", ErrWeakPassword)
	case strings.Count(pw, string([]rune(pw)[0])) == n:
		return fmt.Errorf("%w: the new password is one character repeated", ErrWeakPassword)
	case common[lower]:
		return fmt.Errorf("%w: the new password is on the list of common passwords", ErrWeakPassword)
	}
	return nil
}

// hash checks and hashes a new password.
func hash(name, pw string) (string, error) {
	if err := CheckPassword(name, pw); err != nil {
		return "", err
	}
	h, err := auth.HashPassword(pw)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrWeakPassword, err)
	}
	return h, nil
}

// storeErr maps the store's errors to this package's.
func storeErr(name string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	case errors.Is(err, store.ErrExists):
		return fmt.Errorf("%w: a technician %q exists already", ErrExists, name)
	case errors.Is(err, store.ErrLastAdmin):
		return fmt.Errorf("%w: %q is the only enabled admin", ErrLastAdmin, name)
	}
	return err
}

// List returns every technician, by name.
func (a *Accounts) List(ctx context.Context) ([]store.Technician, error) {
	return a.store.ListTechnicians(ctx)
}

// Get returns one technician.
func (a *Accounts) Get(ctx context.Context, name string) (store.Technician, error) {
	t, err := a.store.GetTechnician(ctx, name)
	if err != nil {
		return t, storeErr(name, err)
	}
	return t, nil
}

// NewAccount describes a technician to create.
type NewAccount struct {
	Name   string
	Role   int
	Groups []string
	// Password is the first password; empty: a random one is generated
	// (and returned by Create).
	Password string
}

// Create adds a technician who must change the password at the first
// sign-in. It returns the account and the generated password ("" when
// n.Password was given).
func (a *Accounts) Create(ctx context.Context, n NewAccount) (store.Technician, string, error) {
	if err := CheckName(n.Name); err != nil {
		return store.Technician{}, "", err
	}
	if err := CheckRole(n.Role); err != nil {
		return store.Technician{}, "", err
	}
	groups, err := CleanGroups(n.Groups)
	if err != nil {
		return store.Technician{}, "", err
	}
	pw, generated := n.Password, ""
	if pw == "" {
		pw = auth.RandomPassword()
		generated = pw
	}
	h, err := hash(n.Name, pw)
	if err != nil {
		return store.Technician{}, "", err
	}
	t := store.Technician{Name: n.Name, PasswordHash: h, Role: n.Role, Groups: groups, MustChangePassword: true, CreatedAt: a.now()}
	if err := a.store.CreateTechnician(ctx, t); err != nil {
		return store.Technician{}, "", storeErr(n.Name, err)
	}
	return t, generated, nil
}

// Change is what Update changes; nil fields stay.
type Change struct {
	Role   *int
	Groups *[]string
}

// Update changes a technician's role and groups and returns the account
// before and after. Demoting the last enabled admin is ErrLastAdmin. The
// new role applies to the technician's next call (the relay reads the
// role on every call), so sessions stay.
func (a *Accounts) Update(ctx context.Context, name string, c Change) (before, after store.Technician, err error) {
	if c.Role != nil {
		if err := CheckRole(*c.Role); err != nil {
			return before, after, err
		}
	}
	var groups []string
	if c.Groups != nil {
		if groups, err = CleanGroups(*c.Groups); err != nil {
			return before, after, err
		}
	}
	after, err = a.store.EditTechnician(ctx, name, func(t *store.Technician) error {
		before = *t
		before.Groups = slices.Clone(t.Groups)
		if c.Role != nil {
			t.Role = *c.Role
		}
		if c.Groups != nil {
			t.Groups = groups
		}
		return nil
	})
	if err != nil {
		return before, after, storeErr(name, err)
	}
	return before, after, nil
}

// SetDisabled disables or enables technician name on behalf of actor and
// returns the account and how many sessions ended. Disabling ends every
// session of the technician; an actor cannot disable themselves
// (ErrSelf), nor the last enabled admin (ErrLastAdmin).
func (a *Accounts) SetDisabled(ctx context.Context, actor, name string, disabled bool) (store.Technician, int64, error) {
	if disabled && actor == name {
		return store.Technician{}, 0, fmt.Errorf("%w: you cannot disable your own account; another admin can", ErrSelf)
	}
	t, err := a.store.EditTechnician(ctx, name, func(t *store.Technician) error {
		t.Disabled = disabled
		return nil
	})
	if err != nil {
		return t, 0, storeErr(name, err)
	}
	if !disabled {
		return t, 0, nil
	}
	ended, err := a.store.DeleteTechnicianSessions(ctx, name)
	return t, ended, err
}

// Delete removes technician name on behalf of actor, with their sessions,
// and returns how many sessions ended. An actor cannot delete themselves
// (ErrSelf), nor the last enabled admin (ErrLastAdmin).
func (a *Accounts) Delete(ctx context.Context, actor, name string) (int64, error) {
	if actor == name {
		return 0, fmt.Errorf("%w: you cannot delete your own account; another admin can", ErrSelf)
	}
	n, err := a.store.DeleteTechnician(ctx, name)
	if err != nil {
		return 0, storeErr(name, err)
	}
	return n, nil
}

// Reset is an admin's password reset.
type Reset struct {
	// Generated is the generated password, "" when one was given.
	Generated     string
	WasLocked     bool
	SessionsEnded int64
}

// ResetPassword sets technician name's password to pw (empty: a
// generated one), which they must change at their next sign-in; unlocks
// the account and ends its sessions. The TOTP second factor stays.
func (a *Accounts) ResetPassword(ctx context.Context, name, pw string) (Reset, error) {
	var r Reset
	if pw == "" {
		pw = auth.RandomPassword()
		r.Generated = pw
	}
	h, err := hash(name, pw)
	if err != nil {
		return Reset{}, err
	}
	t, err := a.store.EditTechnician(ctx, name, func(t *store.Technician) error {
		t.PasswordHash, t.MustChangePassword = h, true
		return nil
	})
	if err != nil {
		return Reset{}, storeErr(name, err)
	}
	r.WasLocked = a.now().Before(t.LockedUntil)
	if err := a.store.SetLoginState(ctx, name, 0, time.Time{}); err != nil {
		return Reset{}, storeErr(name, err)
	}
	if r.SessionsEnded, err = a.store.DeleteTechnicianSessions(ctx, name); err != nil {
		return Reset{}, err
	}
	return r, nil
}

// ChangePassword changes technician name's own password, given the
// current one, and ends their sessions but keep (the caller's). A wrong
// current password counts as a wrong sign-in (ErrWrongPassword; at the
// limit the account locks: ErrLocked), so a stolen session cannot guess
// the password faster than the sign-in page. It returns how many
// sessions ended.
func (a *Accounts) ChangePassword(ctx context.Context, name, current, next string, keep []byte) (int64, error) {
	if current == next {
		return 0, fmt.Errorf("%w: the new password is the current one; choose another", ErrWeakPassword)
	}
	if err := CheckPassword(name, next); err != nil {
		return 0, err
	}
	charge, err := a.store.ChargeLogin(ctx, name, a.now(), auth.MaxFailures, auth.LockoutPeriod)
	switch {
	case errors.Is(err, store.ErrLocked):
		return 0, fmt.Errorf("%w: after %d wrong passwords, until %s", ErrLocked, auth.MaxFailures, charge.Technician.LockedUntil.UTC().Format(time.RFC3339))
	case err != nil:
		return 0, storeErr(name, err)
	}
	ok, err := a.Verify(charge.Technician.PasswordHash, current)
	if err != nil || !ok {
		if charge.Locked {
			return 0, fmt.Errorf("%w: %d wrong passwords; the account is locked until %s", ErrLocked, auth.MaxFailures, charge.Technician.LockedUntil.UTC().Format(time.RFC3339))
		}
		return 0, fmt.Errorf("%w (%d of %d before the account locks)", ErrWrongPassword, charge.Failures, auth.MaxFailures)
	}
	if err := a.store.SetLoginState(ctx, name, 0, time.Time{}); err != nil {
		return 0, storeErr(name, err)
	}
	h, err := hash(name, next)
	if err != nil {
		return 0, err
	}
	if _, err := a.store.EditTechnician(ctx, name, func(t *store.Technician) error {
		t.PasswordHash, t.MustChangePassword = h, false
		return nil
	}); err != nil {
		return 0, storeErr(name, err)
	}
	return a.store.DeleteOtherSessions(ctx, name, keep)
}
