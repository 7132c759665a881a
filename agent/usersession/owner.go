package usersession

import "context"

type ownerKey struct{}

// WithOwner returns ctx carrying report, which a Runner's Run calls with
// the uid of the console user whose screen the session shows, once it
// has found them (the trays of that user only see the session).
func WithOwner(ctx context.Context, report func(uid uint32)) context.Context {
	return context.WithValue(ctx, ownerKey{}, report)
}

// ReportOwner tells the report in ctx (WithOwner), if any, that the
// session shows uid's screen.
func ReportOwner(ctx context.Context, uid uint32) {
	if report, ok := ctx.Value(ownerKey{}).(func(uint32)); ok && report != nil {
		report(uid)
	}
}
