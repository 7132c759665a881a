package server

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/bus"
	"github.com/deskside/deskside/relay/store"
)

// The helpers the console, diagnostics and desktop services share: device
// lookup, requests to an agent and their errors, limit clamps and store
// errors.

// Device list pages: the default and the most a request gets.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// storeErr is the console status of a store failure.
func storeErr(err error) error {
	return status.Errorf(codes.Unavailable, "relay store: %v", err)
}

// clampLimit is a request's limit, or def when it is not positive or
// above max.
func clampLimit(limit int32, def, max int) int {
	if limit <= 0 || int(limit) > max {
		return def
	}
	return int(limit)
}

// device returns a device by id, with a console status for a missing id
// or an unknown device; a device outside the caller's device groups
// (deviceScope) is unknown.
func (c *consoleService) device(ctx context.Context, id string) (store.Device, error) {
	if id == "" {
		return store.Device{}, status.Error(codes.InvalidArgument, "device id is required (see `deskside devices list`)")
	}
	d, err := c.s.store.GetDevice(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !c.s.deviceInScope(ctx, d) {
		// A device outside the caller's groups is answered as missing.
		return store.Device{}, status.Errorf(codes.NotFound, "no device %q (see `deskside devices list`)", id)
	} else if err != nil {
		return d, storeErr(err)
	}
	return d, nil
}

func (c *consoleService) inventory(ctx context.Context, id string) (*desksidev1.Inventory, error) {
	inv, err := c.s.store.GetInventory(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, storeErr(err)
	}
	p := new(desksidev1.Inventory)
	if err := proto.Unmarshal(inv.Data, p); err != nil {
		return nil, status.Errorf(codes.DataLoss, "stored inventory of %s is unreadable: %v", id, err)
	}
	return p, nil
}

// agentRequest sends req to the device's agent, wherever its stream is,
// and returns the answer; an agent's error answer is an Aborted status.
func (c *consoleService) agentRequest(ctx context.Context, id string, req *desksidev1.RelayMessage) (*desksidev1.AgentMessage, error) {
	if _, err := c.device(ctx, id); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := bus.Request(ctx, c.s.bus, id, req)
	if err != nil {
		return nil, agentErr(id, err)
	}
	if e := m.GetError(); e != nil {
		return nil, status.Errorf(codes.Aborted, "device %s: %s", id, wire.CleanString(e.GetMessage(), 1024))
	}
	return m, nil
}

// agentErr maps a bus error to a console status.
func agentErr(id string, err error) error {
	switch {
	case errors.Is(err, bus.ErrNoRoute):
		return status.Errorf(codes.FailedPrecondition, "device %s is offline", id)
	case errors.Is(err, bus.ErrAgentGone):
		return status.Errorf(codes.Unavailable, "device %s disconnected before answering", id)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "device %s did not answer in time", id)
	case errors.Is(err, context.Canceled):
		return status.FromContextError(err).Err()
	}
	return status.Errorf(codes.Unavailable, "reaching device %s: %v", id, err)
}

// every calls f every d until ctx ends or f returns false.
func every(ctx context.Context, d time.Duration, f func() bool) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !f() {
				return
			}
		}
	}
}
