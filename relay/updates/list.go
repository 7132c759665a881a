package updates

// What the console's Releases page shows: the releases the relay holds
// and where a rollout stands over the devices it selects.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/semver"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/store"
)

// settingList names the list of uploaded releases (the store cannot
// list settings by prefix).
const settingList = "updates.releases"

// MaxFailures caps the failed devices Scope returns.
const MaxFailures = 200

// listMu serializes the read-modify-write of the release list within
// a relay (uploads are rare; with several relays the last writer wins,
// as for the device states).
var listMu sync.Mutex

type listed struct {
	OS       string    `json:"os"`
	Arch     string    `json:"arch"`
	Version  string    `json:"version"`
	Uploaded time.Time `json:"uploaded"`
}

// ReleaseInfo is one release the relay holds.
type ReleaseInfo struct {
	Manifest *desksidev1.ReleaseManifest
	// Uploaded is when it was uploaded (zero for one uploaded before the
	// relay kept a release list).
	Uploaded time.Time
}

func (u *Updates) readList(ctx context.Context) ([]listed, error) {
	b, err := u.store.GetRelaySetting(ctx, settingList)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var l []listed
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("release list: %w", err)
	}
	return l, nil
}

// Listed adds an uploaded release to the relay's release list (an upload
// again moves its time).
func (u *Updates) Listed(ctx context.Context, m *desksidev1.ReleaseManifest) error {
	listMu.Lock()
	defer listMu.Unlock()
	l, err := u.readList(ctx)
	if err != nil {
		return err
	}
	l = slices.DeleteFunc(l, func(e listed) bool {
		return e.OS == m.GetOs() && e.Arch == m.GetArch() && e.Version == m.GetVersion()
	})
	l = append(l, listed{OS: m.GetOs(), Arch: m.GetArch(), Version: m.GetVersion(), Uploaded: u.now().UTC()})
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return u.store.PutRelaySetting(ctx, settingList, b)
}

// Releases returns the releases the relay holds, newest version first
// (then by platform): those of its list and the rollout's, without
// reading their executables.
func (u *Updates) Releases(ctx context.Context) ([]ReleaseInfo, error) {
	l, err := u.readList(ctx)
	if err != nil {
		return nil, err
	}
	r, err := u.Rollout(ctx)
	if err != nil {
		return nil, err
	}
	if r != nil && !slices.ContainsFunc(l, func(e listed) bool { return e.OS == r.OS && e.Arch == r.Arch && e.Version == r.Version }) {
		l = append(l, listed{OS: r.OS, Arch: r.Arch, Version: r.Version})
	}
	out := make([]ReleaseInfo, 0, len(l))
	for _, e := range l {
		b, err := u.store.GetRelaySetting(ctx, releaseName(e.OS, e.Arch, e.Version))
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		sr := &desksidev1.SignedRelease{}
		m := &desksidev1.ReleaseManifest{}
		if err := proto.Unmarshal(b, sr); err != nil {
			return nil, fmt.Errorf("release %s: %w", e.Version, err)
		}
		if err := proto.Unmarshal(sr.GetManifest(), m); err != nil {
			return nil, fmt.Errorf("release %s: %w", e.Version, err)
		}
		out = append(out, ReleaseInfo{Manifest: m, Uploaded: e.Uploaded})
	}
	slices.SortFunc(out, func(a, b ReleaseInfo) int {
		return cmp.Or(-semver.Compare(a.Manifest.GetVersion(), b.Manifest.GetVersion()),
			strings.Compare(a.Manifest.GetOs(), b.Manifest.GetOs()), strings.Compare(a.Manifest.GetArch(), b.Manifest.GetArch()))
	})
	return out, nil
}

// Check refuses a rollout SetRollout would refuse, without starting it.
func (u *Updates) Check(ctx context.Context, r Rollout) error {
	switch {
	case r.Percent < 0 || r.Percent > 100:
		return fmt.Errorf("%w: a percentage from 1 to 100", ErrInvalid)
	case r.Percent == 0 && r.Group == "":
		return fmt.Errorf("%w: give --percent N, --group G or --all", ErrInvalid)
	}
	b, err := u.store.GetRelaySetting(ctx, releaseName(r.OS, r.Arch, r.Version))
	if errors.Is(err, store.ErrNotFound) || err == nil && len(b) == 0 {
		return fmt.Errorf("%w: no release %s for %s/%s (deskside release upload)", ErrNotFound, r.Version, r.OS, r.Arch)
	}
	return err
}

// ScopeDevice is what Scope needs of an enrolled device.
type ScopeDevice struct {
	Device
	Hostname string
	Online   bool
}

// Scope counts the devices r selects and, for those of its platform,
// where its release stands (RolloutProgress documents each count).
func (u *Updates) Scope(ctx context.Context, r Rollout, devices []ScopeDevice) (*desksidev1.RolloutProgress, error) {
	states, err := u.States(ctx)
	if err != nil {
		return nil, err
	}
	p := &desksidev1.RolloutProgress{}
	type platform struct{ os, arch string }
	selected := map[platform]uint32{}
	for _, d := range devices {
		if !r.Selected(d.Device) {
			continue
		}
		selected[platform{d.OS, d.Arch}]++
		if d.OS != r.OS || d.Arch != r.Arch {
			continue
		}
		p.InScope++
		st, ok := states[d.ID]
		if ok && st.Version == r.Version {
			switch st.State {
			case desksidev1.UpdateState_UPDATE_STATE_DOWNLOADING:
				p.Downloading++
			case desksidev1.UpdateState_UPDATE_STATE_INSTALLED:
				p.Installed++
			case desksidev1.UpdateState_UPDATE_STATE_REFUSED:
				p.Refused++
			case desksidev1.UpdateState_UPDATE_STATE_FAILED:
				p.Failed++
			case desksidev1.UpdateState_UPDATE_STATE_ROLLED_BACK:
				p.RolledBack++
			default:
				p.Offered++
			}
			if st.State == desksidev1.UpdateState_UPDATE_STATE_REFUSED || st.State == desksidev1.UpdateState_UPDATE_STATE_FAILED ||
				st.State == desksidev1.UpdateState_UPDATE_STATE_ROLLED_BACK {
				p.Failures = append(p.Failures, failure(d, st))
			}
			continue
		}
		switch {
		case !envelope.Newer(r.Version, d.Version):
			p.Current++
		case d.Online:
			p.Offered++
		default:
			p.Waiting++
		}
	}
	for k, n := range selected {
		p.Selected = append(p.Selected, &desksidev1.PlatformCount{Os: k.os, Arch: k.arch, Devices: n})
	}
	slices.SortFunc(p.Selected, func(a, b *desksidev1.PlatformCount) int {
		return cmp.Or(strings.Compare(a.GetOs(), b.GetOs()), strings.Compare(a.GetArch(), b.GetArch()))
	})
	slices.SortFunc(p.Failures, func(a, b *desksidev1.DeviceUpdate) int {
		return cmp.Or(b.GetAt().AsTime().Compare(a.GetAt().AsTime()), strings.Compare(a.GetDeviceId(), b.GetDeviceId()))
	})
	if len(p.Failures) > MaxFailures {
		p.Failures = p.Failures[:MaxFailures]
	}
	return p, nil
}

func failure(d ScopeDevice, st DeviceState) *desksidev1.DeviceUpdate {
	return &desksidev1.DeviceUpdate{DeviceId: d.ID, Hostname: d.Hostname, At: timestamppb.New(st.At),
		Status: &desksidev1.UpdateStatus{Version: st.Version, State: st.State, Reason: st.Reason}}
}
