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

// Handler delivers a request to an agent's stream and passes each reply to
// recv until recv reports the exchange done (true), ctx ends, or the
// stream goes away. When ctx ends first, the handler tells the agent to
// cancel the request, unless its cause is ErrCallerDone.
type Handler func(ctx context.Context, req *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) (done bool)) error

// Bus routes requests to agent streams.
type Bus interface {
	// Serve makes h the route for deviceID until stop is called. A later
	// Serve for the same device replaces the route (the newer stream wins);
	// stopping the replaced one then does nothing.
	Serve(deviceID string, h Handler) (stop func(), err error)
	// Stream sends req to the device and passes every reply to recv until
	// recv returns true (see Handler).
	Stream(ctx context.Context, deviceID string, req *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) (done bool)) error
}

// ErrCallerDone is the cause a Handler's ctx ends with when the caller,
// on another relay, has every reply it wanted (its recv returned true
// there, while the handler's recv only forwards): the exchange is
// complete, not abandoned, so the handler tells the agent nothing, as
// when its own recv returns true.
var ErrCallerDone = errors.New("bus: the caller has all the replies it wanted")

// ErrAgentGone is returned when the agent's stream ended before the
// exchange finished.
var ErrAgentGone = errors.New("bus: the device disconnected before answering")

// Request sends req and returns the first reply.
func Request(ctx context.Context, b Bus, deviceID string, req *desksidev1.RelayMessage) (*desksidev1.AgentMessage, error) {
	var reply *desksidev1.AgentMessage
	err := b.Stream(ctx, deviceID, req, func(m *desksidev1.AgentMessage) bool {
		reply = m
		return true
	})
	return reply, err
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

// Stream implements Bus.
func (l *Local) Stream(ctx context.Context, deviceID string, req *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
	l.mu.Lock()
	r := l.routes[deviceID]
	l.mu.Unlock()
	if r == nil {
		return ErrNoRoute
	}
	return r.h(ctx, req, recv)
}
