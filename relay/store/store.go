// Package store defines the relay's persistent state behind one small
// interface, Store, with backends in sub-packages (sqlite, the embedded
// default, and postgres, shared by scaled-out relays) that must all pass
// the conformance suite in storetest. What the backends share apart from
// their SQL (filter validation, the stored form of times, LIKE patterns)
// lives here.
//
// The store knows nothing about protobuf: inventories are opaque bytes plus
// the summary columns the fleet view filters on. Diffing inventories, hashing
// secrets and checking passwords happen above it; the store only makes each
// step atomic.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
)

// Store is the relay's persistent state. Implementations are safe for
// concurrent use.
type Store interface {
	TechnicianStore
	TicketStore
	// ReportStore feeds the reports (reports.go).
	ReportStore
	// KBStore is the knowledge base (kbstore.go).
	KBStore
	// OutboxStore is notifications waiting to leave (outbox.go).
	OutboxStore
	// HelpStore is Get help's requests and attachments (help.go).
	HelpStore
	// UpdateStore is each device's agent update state (updatestates.go).
	UpdateStore

	// CreateDevice records a newly enrolled device. ErrExists if the id is taken.
	CreateDevice(ctx context.Context, d Device) error
	// DeviceByMachineID returns the device that is not revoked with this
	// machine id (the first enrolled, should there be several), or
	// ErrNotFound.
	DeviceByMachineID(ctx context.Context, machineID string) (Device, error)
	// EnrollDevice records an enrollment atomically.
	//
	// With replaces set (the certificate serial the caller read), it
	// re-enrolls device d.ID: only if that device is not revoked, is
	// offline, has d.MachineID (non-empty) and still has that serial, it
	// keeps its first seen, history and group, takes d's CertSerial (so
	// its old certificate is no longer accepted; a pending serial is
	// dropped), Hostname and
	// AgentVersion, loses unattended access (a new install must be
	// allowed again), and replaced is true; otherwise ErrExists (another
	// enrollment, a revocation or a connection came in between).
	//
	// With replaces empty it creates d as CreateDevice does; ErrExists if
	// the id is taken or another device that is not revoked has
	// d.MachineID (non-empty). It returns the device as stored.
	EnrollDevice(ctx context.Context, d Device, replaces string) (dev Device, replaced bool, err error)
	// GetDevice returns one device or ErrNotFound.
	GetDevice(ctx context.Context, id string) (Device, error)
	// ListDevices returns devices matching f in f.Sort order (hostname by
	// default) with id as tie-break,
	// and the total number matching f (ignoring paging).
	ListDevices(ctx context.Context, f DeviceFilter) ([]Device, int64, error)
	// DeviceConnected records a hello: identity fields, online, last seen.
	DeviceConnected(ctx context.Context, h DeviceHello) error
	// SetOffline marks a device offline and updates last seen, unless it
	// has connected again since connectedAt (the hello time of the stream
	// that ended: with several relays the agent may already be on another
	// one); then it does nothing. A zero connectedAt marks it offline
	// regardless.
	SetOffline(ctx context.Context, id string, at, connectedAt time.Time) error
	// TouchDevice updates last seen.
	TouchDevice(ctx context.Context, id string, at time.Time) error
	// MarkAllOffline marks every device offline (relay start). Returns how many changed.
	MarkAllOffline(ctx context.Context) (int64, error)
	// SetPendingSerial records pending as the serial of a renewed
	// certificate of device id, accepted besides its current serial until
	// ConfirmSerial. ErrNotFound unless the device exists, is not revoked
	// and its current serial is current (a renewal from a certificate that
	// was replaced meanwhile).
	SetPendingSerial(ctx context.Context, id, current, pending string) error
	// ConfirmSerial makes the pending serial current when it is serial (the
	// agent connected with its renewed certificate) and clears it: from
	// then on the old serial is refused. ErrNotFound when serial is not
	// the device's pending serial (or the device is revoked).
	ConfirmSerial(ctx context.Context, id, serial string) error
	// RevokeDevice marks a device revoked; ErrNotFound if unknown.
	RevokeDevice(ctx context.Context, id string, at time.Time) error

	// PutInventory atomically replaces the device's current inventory,
	// updates its summary columns and appends changes to its history.
	PutInventory(ctx context.Context, inv Inventory, sum DeviceSummary, changes []InventoryChange) error
	// GetInventory returns the current inventory or ErrNotFound.
	GetInventory(ctx context.Context, deviceID string) (Inventory, error)
	// InventoryHistory returns up to limit changes, newest first.
	InventoryHistory(ctx context.Context, deviceID string, limit int) ([]InventoryChange, error)

	// AddHealthSamples stores samples for one device in one transaction,
	// ignoring samples already stored (an agent resends a sample with
	// its id and time unchanged). Returns how many were new.
	AddHealthSamples(ctx context.Context, deviceID string, samples []HealthSample) (int, error)
	// LatestHealth returns the newest raw sample or ErrNotFound.
	LatestHealth(ctx context.Context, deviceID string) (HealthSample, error)
	// HealthRange returns points in [from, to), oldest first: downsampled
	// buckets and raw samples together.
	HealthRange(ctx context.Context, deviceID string, from, to time.Time) ([]HealthPoint, error)
	// CompactHealth averages raw samples older than rawBefore into buckets
	// of the given width and deletes them, then deletes buckets older than
	// dropBefore. Returns the number of raw samples folded.
	CompactHealth(ctx context.Context, rawBefore time.Time, bucket time.Duration, dropBefore time.Time) (int64, error)

	// CreateEnrollToken stores a new enrollment token.
	CreateEnrollToken(ctx context.Context, t EnrollToken) error
	// ConsumeEnrollToken atomically checks and uses one use of a token.
	// Errors: ErrTokenUnknown (no such id or wrong secret), ErrTokenExpired,
	// ErrTokenUsed.
	ConsumeEnrollToken(ctx context.Context, id string, secretHash []byte, now time.Time) error

	// CreateTechnician adds a technician; ErrExists if the name is taken.
	CreateTechnician(ctx context.Context, t Technician) error
	// GetTechnician returns one technician or ErrNotFound.
	GetTechnician(ctx context.Context, name string) (Technician, error)
	// CountTechnicians returns how many technicians exist.
	CountTechnicians(ctx context.Context) (int64, error)
	// SetLoginState stores failed-login count and lockout for a technician
	// (a right password resets them; an admin's unlock too).
	SetLoginState(ctx context.Context, name string, failed int, lockedUntil time.Time) error
	// ChargeLogin counts a sign-in attempt before its password is checked,
	// in one atomic update (concurrent callers, on any number of relays,
	// each see their own count): unless the account is locked at now, the
	// failure count goes up by one, and the attempt that reaches max locks
	// the account until now+lock (and starts the count again at zero). It
	// returns the technician after the update. ErrLocked (with the
	// technician, whose LockedUntil says until when) if the account is
	// locked, ErrNotFound if there is no such technician.
	ChargeLogin(ctx context.Context, name string, now time.Time, max int, lock time.Duration) (LoginCharge, error)
	// UseTOTPStep records step as the last TOTP time step the technician
	// signed in with, atomically: ErrTOTPReused if it is not after the one
	// recorded, ErrNotFound if there is no such technician.
	UseTOTPStep(ctx context.Context, name string, step int64) error
	// DeleteTechnicianSessions ends all of a technician's sessions and
	// returns how many there were.
	DeleteTechnicianSessions(ctx context.Context, name string) (int64, error)
	// UpdateTechnician replaces password hash, role and TOTP secret
	// (TechnicianStore.EditTechnician changes the rest, atomically).
	UpdateTechnician(ctx context.Context, t Technician) error

	// CreateSession stores a console session.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns a session by token hash or ErrNotFound (expired
	// sessions are returned; callers check ExpiresAt).
	GetSession(ctx context.Context, tokenHash []byte) (Session, error)
	// DeleteSession removes a session; deleting a missing one is not an error.
	DeleteSession(ctx context.Context, tokenHash []byte) error

	// AppendAudit appends an event to the hash-chained audit log, filling
	// Seq and PrevHash, and Hash with seal(PrevHash, event) computed inside
	// the append's transaction, and returns it. seal is the chain's keyed
	// hash (package relay/audit); the store never holds the key.
	AppendAudit(ctx context.Context, e AuditEvent, seal AuditSeal) (AuditEvent, error)
	// AppendAudits appends events in order in one transaction, as
	// AppendAudit appends one: each is chained to the one before it (the
	// first to the log's last), sealed inside the transaction, and the
	// events are returned in order as stored. Either all are stored or,
	// with the error, none. No events is a no-op.
	AppendAudits(ctx context.Context, events []AuditEvent, seal AuditSeal) ([]AuditEvent, error)
	// ListAudit returns the events f selects, newest first; f.Validate
	// errors are returned as they are.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// ScanAudit returns up to limit events with Seq > after, oldest first
	// (the verifier's walk). limit <= 0 means no limit.
	ScanAudit(ctx context.Context, after int64, limit int) ([]AuditEvent, error)

	// SetDevicePolicy sets a device's remote-access policy; ErrNotFound if
	// the device is unknown.
	SetDevicePolicy(ctx context.Context, id string, unattendedAllowed bool, maxSessions int) error
	// SetEndpointTrust stores what the device's agent reports it enforces
	// (Device.EndpointTrust); ErrNotFound if the device is unknown.
	SetEndpointTrust(ctx context.Context, id string, data []byte) error
	// SetDeviceGroup assigns a device to a group ("" for none); ErrNotFound
	// if the device is unknown.
	SetDeviceGroup(ctx context.Context, id, group string) error
	// PutGroupSettings stores a device group's settings (opaque bytes),
	// replacing any.
	PutGroupSettings(ctx context.Context, group string, data []byte) error
	// GetGroupSettings returns a group's settings or ErrNotFound.
	GetGroupSettings(ctx context.Context, group string) ([]byte, error)
	// PutRelaySetting stores a relay-wide setting (opaque bytes) by name,
	// replacing what was there; GetRelaySetting returns it or ErrNotFound.
	PutRelaySetting(ctx context.Context, name string, data []byte) error
	GetRelaySetting(ctx context.Context, name string) ([]byte, error)

	// AddCheckReport stores a diagnostics report and returns its id;
	// ErrNotFound if the device is unknown.
	AddCheckReport(ctx context.Context, r CheckReport) (int64, error)
	// ListCheckReports returns up to limit reports of a device, newest first.
	ListCheckReports(ctx context.Context, deviceID string, limit int) ([]CheckReport, error)

	// QueueCommand keeps a command for an offline device until it
	// reconnects or the command expires; returns its id. ErrNotFound if the
	// device is unknown.
	QueueCommand(ctx context.Context, q QueuedCommand) (int64, error)
	// TakeQueuedCommands removes and returns the device's commands that have
	// not expired at now, oldest first, and deletes its expired ones.
	TakeQueuedCommands(ctx context.Context, deviceID string, now time.Time) ([]QueuedCommand, error)

	// Close releases the store.
	Close() error
}

// CheckReport is a stored diagnostics report.
type CheckReport struct {
	ID         int64
	DeviceID   string
	Time       time.Time
	Technician string
	Overall    int    // values of desksidev1.CheckStatus
	Data       []byte // the report, opaque
}

// QueuedCommand is a command waiting for an offline device.
type QueuedCommand struct {
	ID         int64
	DeviceID   string
	Technician string
	Created    time.Time
	Expires    time.Time
	Data       []byte // the command, opaque
}

// Device is one enrolled endpoint.
type Device struct {
	ID           string
	Hostname     string
	AgentVersion string
	OS           string
	Arch         string
	CertSerial   string
	// PendingSerial is the serial of a renewed certificate the agent has
	// not connected with yet ("" for none); see SetPendingSerial.
	PendingSerial string
	// MachineID identifies the machine the device enrolled from (opaque,
	// app-specific; "" if the agent sent none), so that enrolling it again
	// replaces the device rather than adding one (see EnrollDevice).
	MachineID string
	FirstSeen time.Time
	LastSeen  time.Time
	Online    bool
	Revoked   bool
	RevokedAt time.Time
	// Group names the device group whose settings (check thresholds)
	// apply; "" for none.
	Group string
	// UnattendedAllowed lets technicians open sessions without the user's
	// consent; MaxSessions caps concurrent sessions (0 means 1).
	UnattendedAllowed bool
	MaxSessions       int
	// EndpointTrust is what the agent last reported it enforces whatever
	// the relay says (a marshalled deskside.v1.EndpointTrust, cleaned by
	// the relay); nil until it reports one.
	EndpointTrust []byte
	DeviceSummary
}

// DeviceSummary are the inventory values the fleet view shows and filters on.
type DeviceSummary struct {
	Model       string
	CPUModel    string
	MemoryBytes uint64
	// The system volume as df shows it: size, used, and available to
	// users (statfs f_bavail; root's reserved blocks are neither).
	DiskTotalBytes uint64
	DiskUsedBytes  uint64
	DiskFreeBytes  uint64
	User           string
	// The operating system as the inventory names it: OSName ("Debian
	// GNU/Linux"), OSVersion ("12.11"), OSFamily ("debian") and OSDisplay,
	// the short name the fleet view shows ("Debian 12.11"). Device.OS is
	// the agent's build target ("linux").
	OSName    string
	OSVersion string
	OSFamily  string
	OSDisplay string
}

// DeviceHello is what a connecting agent says about itself.
type DeviceHello struct {
	ID           string
	Hostname     string
	AgentVersion string
	OS           string
	Arch         string
	At           time.Time
}

// DeviceFilter selects devices. Zero values match everything.
type DeviceFilter struct {
	Hostname string // case-insensitive substring
	// OS is a case-insensitive substring of any of OS, OSName,
	// OSVersion, OSFamily or OSDisplay: "linux", "debian", "Debian 12"
	// and "12.11" all match a Debian 12.11 machine.
	OS    string
	User  string // case-insensitive substring
	Model string // case-insensitive substring
	// Query is a case-insensitive substring of any of hostname, user,
	// the OS columns (as for OS), model or id.
	Query          string
	Online         *bool
	IncludeRevoked bool
	// Groups, when non-nil, keeps only devices whose group (Device.Group)
	// is one of these, compared exactly; an empty non-nil slice matches
	// nothing. It is how a technician's device groups limit what they see.
	Groups []string
	// MemoryBelow keeps devices with 0 < MemoryBytes < MemoryBelow.
	MemoryBelow uint64
	// DiskFreeBelowPercent keeps devices with a known system volume
	// (DiskTotalBytes > 0) whose free space is below this percentage of
	// used plus free, df's measure (free below 10 % is df's Use% above
	// 90 %).
	DiskFreeBelowPercent float64
	// Sort orders the result (default SortHostname); ties are broken by id
	// (ascending, or descending with Descending).
	Sort       DeviceSort
	Descending bool
	// Paging: AfterHostname/AfterID continue a SortHostname ascending
	// listing after that key (keyset paging); Offset skips that many rows
	// of any ordering. Limit caps the result (0 means no limit).
	AfterHostname string
	AfterID       string
	Offset        int
	Limit         int
}

// DeviceSort is the order of ListDevices.
type DeviceSort string

// Device orderings. Text columns compare case-insensitively; SortOS
// orders by OSDisplay, then OS (devices without an inventory first);
// SortOnline puts offline devices first (ascending).
const (
	SortHostname DeviceSort = "hostname"
	SortLastSeen DeviceSort = "last_seen"
	SortOS       DeviceSort = "os"
	SortModel    DeviceSort = "model"
	SortCPU      DeviceSort = "cpu"
	SortMemory   DeviceSort = "memory"
	SortDiskFree DeviceSort = "disk_free"
	SortUser     DeviceSort = "user"
	SortOnline   DeviceSort = "online"
)

// Inventory is a device's current inventory, stored as opaque bytes.
type Inventory struct {
	DeviceID    string
	CollectedAt time.Time
	ReceivedAt  time.Time
	Data        []byte
}

// InventoryChange is one changed inventory value.
type InventoryChange struct {
	DeviceID string
	Time     time.Time
	Field    string
	From     string
	To       string
}

// HealthBatch is one device's part of a health write that covers several
// devices (HealthBatcher).
type HealthBatch struct {
	DeviceID string
	Samples  []HealthSample
	// Touch, when not zero, sets the device's last seen in the same
	// transaction (as TouchDevice).
	Touch time.Time

	// Added and Err are set by AddHealthBatches: how many samples were
	// new, and ErrNotFound (wrapped) when the device is unknown, in which
	// case nothing was stored for it.
	Added int
	Err   error
}

// HealthBatcher is implemented by stores that write the health of many
// devices in one transaction: a relay with one writer (SQLite) pays a
// commit per batch instead of per report.
type HealthBatcher interface {
	// AddHealthBatches stores every batch in one transaction, ignoring
	// samples already stored (as AddHealthSamples), and sets each batch's Added and Err. An
	// unknown device fails its own batch only; any other error fails them
	// all and nothing is stored.
	AddHealthBatches(ctx context.Context, batches []HealthBatch) error
}

// HealthSample is one raw health reading. The numeric columns are what the
// charts need; Detail holds the full sample (per-mount use, top processes,
// temperatures) as opaque bytes.
type HealthSample struct {
	ID              uint64
	Time            time.Time
	CPUPercent      float64
	Load1           float64
	MemUsedBytes    uint64
	MemAvailBytes   uint64
	SwapUsedBytes   uint64
	DiskUsedPercent float64 // the fullest mount
	NetRxBps        float64
	NetTxBps        float64
	Detail          []byte
}

// HealthPoint is a point of a health series: a raw sample (Bucket zero) or
// the average of a downsampled bucket starting at Time.
type HealthPoint struct {
	Time            time.Time
	Bucket          time.Duration
	CPUPercent      float64
	Load1           float64
	MemUsedBytes    uint64
	MemAvailBytes   uint64
	SwapUsedBytes   uint64
	DiskUsedPercent float64
	NetRxBps        float64
	NetTxBps        float64
}

// EnrollToken is a one-time (or few-times) enrollment credential. Only a
// hash of its secret is stored.
type EnrollToken struct {
	ID         string
	SecretHash []byte
	ExpiresAt  time.Time
	Uses       int // uses left
	CreatedBy  string
	CreatedAt  time.Time
}

// Technician is a console user.
type Technician struct {
	Name         string
	PasswordHash string // argon2id, PHC string format
	Role         int    // values of desksidev1.Role
	TOTPSecret   string // base32; empty when no second factor
	FailedLogins int
	LockedUntil  time.Time
	CreatedAt    time.Time
	// TOTPLastStep is the TOTP time step (Unix time / 30 s) of the last
	// code accepted; a code of that step or an earlier one is refused.
	TOTPLastStep int64
	// Disabled accounts cannot sign in or use a session.
	Disabled bool
	// MustChangePassword: the password was set by an admin (or at
	// creation); the technician changes it before doing anything else.
	MustChangePassword bool
	// Groups are the teams / device groups the technician works in
	// (empty: all).
	Groups []string
	// Email is where assignment and escalation mail goes (relay/notify);
	// empty: none.
	Email string
}

// LoginCharge is one counted sign-in attempt (see Store.ChargeLogin).
type LoginCharge struct {
	Technician Technician // after the update
	Failures   int        // attempts counted so far, this one included (1..max)
	Locked     bool       // this attempt reached max and locked the account
}

// Session is a console sign-in. Only a hash of its token is stored.
type Session struct {
	TokenHash  []byte
	Technician string
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// AuditEvent is one privileged action.
type AuditEvent struct {
	Seq      int64
	Time     time.Time
	Actor    string
	Action   string
	Target   string
	Detail   string
	PrevHash string
	Hash     string
}

// AuditSeal computes an event's chained hash from the previous event's
// hash and the event's own fields.
type AuditSeal func(prev string, e AuditEvent) string

// AuditFilter selects audit events. Empty fields select everything.
type AuditFilter struct {
	// Actor and Target match exactly (the target of device actions is the
	// device id).
	Actor, Target string
	// Action matches exactly, or, ending in "*", every action starting
	// with what comes before it ("desktop.*").
	Action string
	// Since and Until bound the event time: Since <= time < Until.
	Since, Until time.Time
	// Before continues a listing: only events with Seq < Before.
	Before int64
	// Limit caps the events returned; <= 0 means no limit.
	Limit int
}

// Validate refuses what no backend can answer: a "*" inside the action, a
// negative cursor and an empty time range.
func (f AuditFilter) Validate() error {
	if p, _ := f.ActionPrefix(); strings.Contains(p, "*") {
		return fmt.Errorf("action %q: \"*\" may only end it", f.Action)
	}
	if f.Before < 0 {
		return fmt.Errorf("negative cursor %d", f.Before)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return fmt.Errorf("until %s is not after since %s", f.Until.UTC().Format(time.RFC3339), f.Since.UTC().Format(time.RFC3339))
	}
	return nil
}

// ActionPrefix reports whether f.Action is a prefix match ("desktop.*")
// and returns the prefix, or f.Action itself.
func (f AuditFilter) ActionPrefix() (string, bool) {
	if p, ok := strings.CutSuffix(f.Action, "*"); ok {
		return p, true
	}
	return f.Action, false
}

// PrefixEnd is the smallest string greater than every string starting with
// p, byte-wise, or "" when there is none (p empty or all 0xff): a prefix
// match as the indexable range p <= s < PrefixEnd(p).
func PrefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// AuditHash is the unkeyed hash of the first audit logs: SHA-256 over the
// previous event's hash and the event's own fields. Anyone with the
// database can recompute it; package relay/audit seals new events with a
// keyed hash over the same encoding (AuditEncode).
func AuditHash(prev string, e AuditEvent) string {
	h := sha256.New()
	AuditEncode(h, prev, e)
	return hex.EncodeToString(h.Sum(nil))
}

// AuditEncode writes the hashed encoding of an event to h: the previous
// hash and each string length-prefixed, Seq and the time in Unix
// nanoseconds big-endian.
func AuditEncode(h io.Writer, prev string, e AuditEvent) {
	var b [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	field(prev)
	binary.BigEndian.PutUint64(b[:], uint64(e.Seq))
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], uint64(e.Time.UTC().UnixNano()))
	h.Write(b[:])
	field(e.Actor)
	field(e.Action)
	field(e.Target)
	field(e.Detail)
}
