package store

import (
	"context"
	"time"
)

// UpdateStore is where each device's agent update stands (package
// relay/updates, docs/adr 33): one row per device, written by whichever
// relay the device reported to. Writes to different devices never touch
// each other; for one device the last write wins.
type UpdateStore interface {
	// PutUpdateState stores s as its device's update state, replacing the
	// last one (one upsert). ErrNotFound if the device is unknown.
	PutUpdateState(ctx context.Context, s UpdateState) error
	// GetUpdateState returns a device's update state, or ErrNotFound.
	GetUpdateState(ctx context.Context, deviceID string) (UpdateState, error)
	// UpdateProgress counts the devices whose state is of version, per
	// state (values of desksidev1.UpdateState).
	UpdateProgress(ctx context.Context, version string) (map[int]int64, error)
	// ListUpdateStates returns up to limit states of the devices whose id
	// sorts after after (byte-wise; "" from the start), in id order.
	// limit <= 0 means no limit.
	ListUpdateStates(ctx context.Context, after string, limit int) ([]UpdateState, error)
}

// UpdateState is where an agent update stands on one device.
type UpdateState struct {
	DeviceID string
	Version  string
	State    int // values of desksidev1.UpdateState
	Reason   string
	At       time.Time
}
