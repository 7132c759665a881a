// Package updates is the relay's side of agent auto-update (docs/adr 33):
// the agent releases an admin uploaded, the rollout (all devices, a
// percentage, or a device group), which connected device is offered
// which release, and each device's state. The relay cannot sign
// releases: it checks that an upload is consistent (signed by the key its
// manifest names, the executable's hash and size) so nobody wastes a
// rollout on a broken upload, but only agents decide, against the key
// they pin.
//
// Releases and the rollout are relay settings. Each device's state is a
// row of its own in the store (store.UpdateStore): recording a status
// writes that device's row only, so relays sharing a database never
// overwrite each other's devices, and for one device the last report
// wins; progress is counted by the database, and listings page by device
// id. States that earlier versions kept in one settings record move to
// the table the first time a relay of this version uses them.
//
// relay/server/updatesvc.go offers releases on the agent streams and is
// the UpdateService adapter (deskside release upload, rollout, status).
package updates

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/store"
)

// Settings names in the relay store.
const (
	settingRelease = "updates.release."
	settingRollout = "updates.rollout"
	// settingStates is where versions before the update_states table
	// kept every device's state, in one record (see migrate).
	settingStates = "updates.states"
	// MaxBinary is the largest executable accepted (as agents accept).
	MaxBinary  = 256 << 20
	maxReason  = 200
	bucketSize = 10000
)

// Errors.
var (
	ErrInvalid  = errors.New("invalid")
	ErrNotFound = errors.New("not found")
)

// Store is what updates need of the relay's store: releases and the
// rollout are relay settings, device states rows of their own.
type Store interface {
	GetRelaySetting(ctx context.Context, name string) ([]byte, error)
	PutRelaySetting(ctx context.Context, name string, data []byte) error
	store.UpdateStore
}

var _ Store = store.Store(nil)

// Rollout is which devices are offered a release: all of them, those
// whose bucket is below Percent, or those of Group.
type Rollout struct {
	Version string    `json:"version"`
	OS      string    `json:"os"`
	Arch    string    `json:"arch"`
	Percent int       `json:"percent,omitempty"` // 1-100; 100 is all
	Group   string    `json:"group,omitempty"`
	Started time.Time `json:"started"`
}

// Device is what the offer decision needs of a connected device.
type Device struct {
	ID, Version, OS, Arch, Group string
}

// DeviceState is where an update stands on one device.
type DeviceState struct {
	DeviceID string                 `json:"-"`
	Version  string                 `json:"version"`
	State    desksidev1.UpdateState `json:"state"`
	Reason   string                 `json:"reason,omitempty"`
	At       time.Time              `json:"at"`
}

// Updates holds releases, the rollout and device states.
type Updates struct {
	store Store
	now   func() time.Time

	// migrated: the states of the old settings record are in the
	// store's table (see migrate).
	mu       sync.Mutex
	migrated atomic.Bool

	// cached is the release last read, so a rollout to many devices
	// reads its executable from the store once.
	cacheMu sync.Mutex
	cached  *cachedRelease
}

type cachedRelease struct {
	name string
	rel  *desksidev1.SignedRelease
	exe  []byte
}

// New returns the updates on st; now is the clock (nil: time.Now).
func New(st Store, now func() time.Time) *Updates {
	if now == nil {
		now = time.Now
	}
	return &Updates{store: st, now: now}
}

func releaseName(os, arch, version string) string {
	return settingRelease + os + "/" + arch + "/" + version
}

// Upload checks and stores a signed release and its executable.
func (u *Updates) Upload(ctx context.Context, r *desksidev1.SignedRelease, exe []byte) (*desksidev1.ReleaseManifest, error) {
	m := &desksidev1.ReleaseManifest{}
	if err := proto.Unmarshal(r.GetManifest(), m); err != nil {
		return nil, fmt.Errorf("%w: not a release manifest (deskside release sign writes one): %v", ErrInvalid, err)
	}
	if _, err := envelope.VerifyRelease(envelope.Fingerprint(m.GetReleasePublicKey()), r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	sum := sha256.Sum256(exe)
	if len(exe) > MaxBinary || uint64(len(exe)) != m.GetSize() || !bytes.Equal(sum[:], m.GetSha256()) {
		return nil, fmt.Errorf("%w: the executable is not the one the manifest signs (upload FILE with FILE.release)", ErrInvalid)
	}
	b, err := proto.Marshal(r)
	if err != nil {
		return nil, err
	}
	name := releaseName(m.GetOs(), m.GetArch(), m.GetVersion())
	// The executable first: a manifest is only ever visible with it.
	if err := u.store.PutRelaySetting(ctx, name+".exe", exe); err != nil {
		return nil, err
	}
	if err := u.store.PutRelaySetting(ctx, name, b); err != nil {
		return nil, err
	}
	u.cacheMu.Lock()
	u.cached = nil // an upload again replaces the release
	u.cacheMu.Unlock()
	return m, nil
}

// Release returns a stored release and its executable.
func (u *Updates) Release(ctx context.Context, os, arch, version string) (*desksidev1.SignedRelease, []byte, error) {
	name := releaseName(os, arch, version)
	u.cacheMu.Lock()
	defer u.cacheMu.Unlock()
	if c := u.cached; c != nil && c.name == name {
		return c.rel, c.exe, nil
	}
	b, err := u.store.GetRelaySetting(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: no release %s for %s/%s (deskside release upload)", ErrNotFound, version, os, arch)
	} else if err != nil {
		return nil, nil, err
	}
	r := &desksidev1.SignedRelease{}
	if err := proto.Unmarshal(b, r); err != nil {
		return nil, nil, err
	}
	exe, err := u.store.GetRelaySetting(ctx, name+".exe")
	if err != nil {
		return nil, nil, err
	}
	u.cached = &cachedRelease{name: name, rel: r, exe: exe}
	return r, exe, nil
}

// SetRollout starts (or changes) the rollout; the release must exist.
func (u *Updates) SetRollout(ctx context.Context, r Rollout) error {
	switch {
	case r.Percent < 0 || r.Percent > 100:
		return fmt.Errorf("%w: a percentage from 1 to 100", ErrInvalid)
	case r.Percent == 0 && r.Group == "":
		return fmt.Errorf("%w: give --percent N, --group G or --all", ErrInvalid)
	}
	if _, _, err := u.Release(ctx, r.OS, r.Arch, r.Version); err != nil {
		return err
	}
	r.Started = u.now().UTC()
	b, _ := json.Marshal(r)
	return u.store.PutRelaySetting(ctx, settingRollout, b)
}

// Rollout returns the rollout, nil when none.
func (u *Updates) Rollout(ctx context.Context) (*Rollout, error) {
	b, err := u.store.GetRelaySetting(ctx, settingRollout)
	if errors.Is(err, store.ErrNotFound) || err == nil && len(b) == 0 {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	r := &Rollout{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, err
	}
	return r, nil
}

// Bucket places a device in 0..9999 by a hash of its id: the same device
// always has the same bucket, so raising a percentage keeps the devices
// already chosen.
func Bucket(deviceID string) int {
	sum := sha256.Sum256([]byte("deskside rollout\x00" + deviceID))
	return int(binary.BigEndian.Uint64(sum[:8]) % bucketSize)
}

// Selected reports whether the rollout includes d.
func (r *Rollout) Selected(d Device) bool {
	if r.Group != "" {
		return d.Group == r.Group
	}
	return Bucket(d.ID) < r.Percent*bucketSize/100
}

// Offer returns the release to offer d, nil when none: the rollout
// includes it, the platform matches, the release is newer than what it
// runs, and it has not failed or rolled back that version. A refusal
// does not stop later offers (each connection and each rollout change
// offers again): a refused offer costs the manifest only, and what the
// agent refused for (no release key pinned yet, say) may have changed.
func (u *Updates) Offer(ctx context.Context, d Device) (*desksidev1.SignedRelease, []byte, error) {
	r, err := u.Rollout(ctx)
	if err != nil || r == nil || !r.Selected(d) || r.OS != d.OS || r.Arch != d.Arch || !envelope.Newer(r.Version, d.Version) {
		return nil, nil, err
	}
	if st, ok, err := u.State(ctx, d.ID); err != nil {
		return nil, nil, err
	} else if ok && st.Version == r.Version && slices.Contains([]desksidev1.UpdateState{
		desksidev1.UpdateState_UPDATE_STATE_FAILED, desksidev1.UpdateState_UPDATE_STATE_ROLLED_BACK,
	}, st.State) {
		return nil, nil, nil
	}
	return u.Release(ctx, r.OS, r.Arch, r.Version)
}

// migrate moves the states that earlier versions kept in the relay
// setting updates.states (one JSON record for every device) into the
// store's table, once: each device whose row is still missing gets the
// state from the setting (a row already there was written since, by a
// relay that moved them before, and is newer), devices no longer known
// are left out, and the setting is emptied. A setting that does not
// decode is emptied too: it is a record of what agents reported, they
// report again on their next offer. Relays doing this at once write the
// same rows.
func (u *Updates) migrate(ctx context.Context) error {
	if u.migrated.Load() {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.migrated.Load() {
		return nil
	}
	b, err := u.store.GetRelaySetting(ctx, settingStates)
	if errors.Is(err, store.ErrNotFound) || err == nil && len(b) == 0 {
		u.migrated.Store(true)
		return nil
	} else if err != nil {
		return err
	}
	var old map[string]DeviceState
	if json.Unmarshal(b, &old) == nil {
		for _, id := range slices.Sorted(maps.Keys(old)) {
			if _, err := u.store.GetUpdateState(ctx, id); err == nil {
				continue
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			st := old[id]
			err := u.store.PutUpdateState(ctx, store.UpdateState{DeviceID: id, Version: wire.CleanString(st.Version, 64),
				State: int(st.State), Reason: wire.CleanString(st.Reason, maxReason), At: st.At.UTC()})
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
	}
	if err := u.store.PutRelaySetting(ctx, settingStates, nil); err != nil {
		return err
	}
	u.migrated.Store(true)
	return nil
}

func fromStore(s store.UpdateState) DeviceState {
	return DeviceState{DeviceID: s.DeviceID, Version: s.Version, State: desksidev1.UpdateState(s.State), Reason: s.Reason, At: s.At}
}

// Record stores what a device reported (agent data: the reason is cut
// and cleaned): one write of that device's row, so relays recording
// different devices never undo each other's.
func (u *Updates) Record(ctx context.Context, deviceID string, s *desksidev1.UpdateStatus) error {
	if err := u.migrate(ctx); err != nil {
		return err
	}
	return u.store.PutUpdateState(ctx, store.UpdateState{
		DeviceID: deviceID, Version: wire.CleanString(s.GetVersion(), 64), State: int(s.GetState()),
		Reason: wire.CleanString(s.GetReason(), maxReason), At: u.now().UTC(),
	})
}

// State returns a device's last recorded state.
func (u *Updates) State(ctx context.Context, deviceID string) (DeviceState, bool, error) {
	if err := u.migrate(ctx); err != nil {
		return DeviceState{}, false, err
	}
	s, err := u.store.GetUpdateState(ctx, deviceID)
	if errors.Is(err, store.ErrNotFound) {
		return DeviceState{}, false, nil
	} else if err != nil {
		return DeviceState{}, false, err
	}
	return fromStore(s), true, nil
}

// Progress counts the devices per state for version.
func (u *Updates) Progress(ctx context.Context, version string) (map[desksidev1.UpdateState]int, error) {
	if err := u.migrate(ctx); err != nil {
		return nil, err
	}
	p, err := u.store.UpdateProgress(ctx, version)
	if err != nil {
		return nil, err
	}
	out := make(map[desksidev1.UpdateState]int, len(p))
	for st, n := range p {
		out[desksidev1.UpdateState(st)] = int(n)
	}
	return out, nil
}

// ListStates returns up to limit devices' last recorded states, in device
// id order (byte-wise), starting after the id after ("" from the first);
// limit <= 0 means all. The last id of a page continues the listing.
func (u *Updates) ListStates(ctx context.Context, after string, limit int) ([]DeviceState, error) {
	if err := u.migrate(ctx); err != nil {
		return nil, err
	}
	ss, err := u.store.ListUpdateStates(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]DeviceState, len(ss))
	for i, s := range ss {
		out[i] = fromStore(s)
	}
	return out, nil
}

// statesPage is how many states States reads at a time.
const statesPage = 1000

// States returns every device's last recorded state by device id. It
// reads them all (in pages); ListStates pages for the caller.
func (u *Updates) States(ctx context.Context) (map[string]DeviceState, error) {
	out := map[string]DeviceState{}
	for after := ""; ; {
		page, err := u.ListStates(ctx, after, statesPage)
		if err != nil {
			return nil, err
		}
		for _, s := range page {
			out[s.DeviceID] = s
		}
		if len(page) < statesPage {
			return out, nil
		}
		after = page[len(page)-1].DeviceID
	}
}
