// Package bus routes a console request to whichever relay holds the target
// agent's stream and brings the agent's reply back. Local is the
// in-process bus of a single relay; a NATS bus for several relays
// implements the same interface.
package bus

import (
	"context"
	"errors"
	"sync"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// ErrNoRoute is returned when no relay holds a stream for the device
// (the agent is offline).
var ErrNoRoute = errors.New("bus: device is not connected")

// Handler delivers a request to an agent's stream and waits for its reply.
type Handler func(ctx context.Context, req *desksidev1.RelayMessage) (*desksidev1.AgentMessage, error)

// Bus routes requests to agent streams.
type Bus interface {
	// Serve makes h the route for deviceID until stop is called. A later
	// Serve for the same device replaces the route (the newer stream wins);
	// stopping the replaced one then does nothing.
	Serve(deviceID string, h Handler) (stop func(), err error)
	// Request sends req to the device and returns its reply.
	Request(ctx context.Context, deviceID string, req *desksidev1.RelayMessage) (*desksidev1.AgentMessage, error)
}

// Local is the in-process Bus.
type Local struct {
	mu     sync.Mutex
	routes map[string]*route
}

type route struct{ h Handler }

var _ Bus = (*Local)(nil)

// NewLocal returns an empty in-process bus.
func NewLocal() *Local { return &Local{routes: make(map[string]*route)} }

// Serve implements Bus.
func (l *Local) Serve(deviceID string, h Handler) (func(), error) {
	r := &route{h: h}
	l.mu.Lock()
	l.routes[deviceID] = r
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		if l.routes[deviceID] == r {
			delete(l.routes, deviceID)
		}
		l.mu.Unlock()
	}, nil
}

// Request implements Bus.
func (l *Local) Request(ctx context.Context, deviceID string, req *desksidev1.RelayMessage) (*desksidev1.AgentMessage, error) {
	l.mu.Lock()
	r := l.routes[deviceID]
	l.mu.Unlock()
	if r == nil {
		return nil, ErrNoRoute
	}
	return r.h(ctx, req)
}
