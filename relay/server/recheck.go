package server

// Long-lived calls (watches, remote-desktop sessions) outlive the moment
// they were authorized. recheckCaller re-reads the caller's session and
// account every Config.CallerRecheck, from the store every relay shares,
// so a technician who is signed out, disabled, deleted or demoted loses
// their open streams on every relay within that interval, and a change
// of device groups applies to streams already open.

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// revokedError ends a long-lived call whose caller lost access to it.
type revokedError struct{ err error }

func (r *revokedError) Error() string { return r.err.Error() }

// requirement is a check a long-lived call adds to its caller's (see
// require): the caller as re-read must still pass it.
type requirement func(*caller) error

// require adds f to what recheckCaller checks for the call of ctx.
func require(ctx context.Context, f requirement) {
	if r, _ := ctx.Value(techKey{}).(*callerRef); r != nil {
		r.mu.Lock()
		r.reqs = append(r.reqs, f)
		r.mu.Unlock()
	}
}

// recheckCaller re-checks the caller of ctx (authorized for method) until
// stop is called, and cancels the returned context with a revokedError
// when the caller may no longer make the call. A store that cannot be
// read keeps the call going: an outage does not end everyone's sessions.
func (s *Server) recheckCaller(ctx context.Context, method string) (context.Context, func()) {
	r, _ := ctx.Value(techKey{}).(*callerRef)
	if r == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		every(ctx, s.cfg.CallerRecheck, func() bool {
			cur := r.p.Load()
			c, err := s.checkCaller(ctx, cur.session.TokenHash, method, Rules[method], false)
			if err == nil {
				err = r.check(c)
			}
			switch status.Code(err) {
			case codes.OK:
				r.p.Store(c)
				return true
			case codes.Unauthenticated, codes.PermissionDenied, codes.FailedPrecondition, codes.NotFound:
				s.log.Info("ended a call whose technician lost access", "technician", cur.Name, "method", method, logKeyError, err)
				cancel(&revokedError{err})
				return false
			}
			if ctx.Err() == nil {
				s.log.Warn("could not re-check a technician's access; the call goes on", "technician", cur.Name, "method", method, logKeyError, err)
			}
			return true
		})
	}()
	return ctx, func() { cancel(nil); <-done }
}

// check runs the call's requirements on c.
func (r *callerRef) check(c *caller) error {
	r.mu.Lock()
	reqs := r.reqs
	r.mu.Unlock()
	for _, f := range reqs {
		if err := f(c); err != nil {
			return err
		}
	}
	return nil
}

// revoked is the status a long-lived call of ctx ends with when its
// caller lost access mid-call, else nil.
func revoked(ctx context.Context) error {
	var r *revokedError
	if errors.As(context.Cause(ctx), &r) {
		return r.err
	}
	return nil
}
