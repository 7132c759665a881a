// Package updates is the relay's side of agent auto-update (docs/adr 33):
// the agent releases an admin uploaded, the rollout (all devices, a
// percentage, or a device group), which connected device is offered
// which release, and each device's state. The relay cannot sign
// releases: it checks that an upload is consistent (signed by the key its
// manifest names, the executable's hash and size) so nobody wastes a
// rollout on a broken upload, but only agents decide, against the key
// they pin.
//
// relay/server/updatesvc.go offers releases on the agent streams; there is
// no console RPC, CLI or page for uploads and rollouts yet.
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
	settingStates  = "updates.states"
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

// Store is what updates need of the relay's store.
type Store interface {
	GetRelaySetting(ctx context.Context, name string) ([]byte, error)
	PutRelaySetting(ctx context.Context, name string, data []byte) error
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
	Version string                 `json:"version"`
	State   desksidev1.UpdateState `json:"state"`
	Reason  string                 `json:"reason,omitempty"`
	At      time.Time              `json:"at"`
}

// Updates holds releases, the rollout and device states.
type Updates struct {
	store Store
	now   func() time.Time

	mu     sync.Mutex
	states map[string]DeviceState // loaded lazily

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
// runs, and it has not refused, failed or rolled back that version.
func (u *Updates) Offer(ctx context.Context, d Device) (*desksidev1.SignedRelease, []byte, error) {
	r, err := u.Rollout(ctx)
	if err != nil || r == nil || !r.Selected(d) || r.OS != d.OS || r.Arch != d.Arch || !envelope.Newer(r.Version, d.Version) {
		return nil, nil, err
	}
	if st, ok, err := u.State(ctx, d.ID); err != nil {
		return nil, nil, err
	} else if ok && st.Version == r.Version && slices.Contains([]desksidev1.UpdateState{
		desksidev1.UpdateState_UPDATE_STATE_REFUSED, desksidev1.UpdateState_UPDATE_STATE_FAILED, desksidev1.UpdateState_UPDATE_STATE_ROLLED_BACK,
	}, st.State) {
		return nil, nil, nil
	}
	return u.Release(ctx, r.OS, r.Arch, r.Version)
}

func (u *Updates) load(ctx context.Context) error {
	if u.states != nil {
		return nil
	}
	u.states = map[string]DeviceState{}
	b, err := u.store.GetRelaySetting(ctx, settingStates)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		u.states = nil
		return err
	}
	return json.Unmarshal(b, &u.states)
}

// Record stores what a device reported (agent data: the reason is cut
// and cleaned).
func (u *Updates) Record(ctx context.Context, deviceID string, s *desksidev1.UpdateStatus) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.load(ctx); err != nil {
		return err
	}
	u.states[deviceID] = DeviceState{
		Version: wire.CleanString(s.GetVersion(), 64), State: s.GetState(),
		Reason: wire.CleanString(s.GetReason(), maxReason), At: u.now().UTC(),
	}
	b, err := json.Marshal(u.states)
	if err != nil {
		return err
	}
	return u.store.PutRelaySetting(ctx, settingStates, b)
}

// State returns a device's last recorded state.
func (u *Updates) State(ctx context.Context, deviceID string) (DeviceState, bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.load(ctx); err != nil {
		return DeviceState{}, false, err
	}
	s, ok := u.states[deviceID]
	return s, ok, nil
}

// Progress counts the devices per state for version.
func (u *Updates) Progress(ctx context.Context, version string) (map[desksidev1.UpdateState]int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.load(ctx); err != nil {
		return nil, err
	}
	out := map[desksidev1.UpdateState]int{}
	for _, s := range u.states {
		if s.Version == version {
			out[s.State]++
		}
	}
	return out, nil
}

// States returns every device's last recorded state.
func (u *Updates) States(ctx context.Context) (map[string]DeviceState, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.load(ctx); err != nil {
		return nil, err
	}
	return maps.Clone(u.states), nil
}
