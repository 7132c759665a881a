package inventory

import (
	"context"
	"fmt"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// readUsers is not implemented on Windows (gopsutil has no session
// enumeration there; WTSEnumerateSessions would be the way).
func readUsers(context.Context) ([]*desksidev1.LoggedInUser, error) {
	return nil, fmt.Errorf("%s: %w", SectionUsers, ErrNotSupported)
}
