//go:build !windows

package inventory

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/shirou/gopsutil/v3/host"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// readUsers lists interactive sessions from utmp (utmpx on macOS), sorted.
func readUsers(ctx context.Context) ([]*desksidev1.LoggedInUser, error) {
	us, err := host.UsersWithContext(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*desksidev1.LoggedInUser, 0, len(us))
	for _, u := range us {
		lu := &desksidev1.LoggedInUser{Name: clean(u.User), Terminal: clean(u.Terminal), Host: clean(u.Host)}
		if lu.Name == "" {
			continue
		}
		if u.Started > 0 {
			lu.Started = timestamppb.New(time.Unix(int64(u.Started), 0))
		}
		out = append(out, lu)
	}
	slices.SortFunc(out, func(a, b *desksidev1.LoggedInUser) int {
		return cmp.Or(
			cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Terminal, b.Terminal),
			cmp.Compare(a.Host, b.Host),
			cmp.Compare(a.GetStarted().GetSeconds(), b.GetStarted().GetSeconds()),
		)
	})
	return out, nil
}
