package server_test

import (
	"testing"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server"
)

// TestSummarizeFreeSpaceIsAvailable checks that the fleet's free space is
// what df calls available: a full volume with reserved blocks left shows
// 0, not the reserved blocks, and a volume with reserved blocks shows
// less than total minus used.
func TestSummarizeFreeSpaceIsAvailable(t *testing.T) {
	for _, tc := range []struct {
		name              string
		total, used, free uint64
		want              uint64
	}{
		{"reserved blocks", 1000, 170, 780, 780},
		{"full for users", 1000, 950, 0, 0},
		{"free above total is capped", 1000, 0, 2000, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := &desksidev1.Inventory{Partitions: []*desksidev1.Partition{{
				Mountpoint: "/", TotalBytes: tc.total, UsedBytes: tc.used, FreeBytes: tc.free,
			}}}
			s := server.Summarize(inv)
			if s.DiskFreeBytes != tc.want || s.DiskTotalBytes != tc.total {
				t.Errorf("free %d of %d, want %d of %d", s.DiskFreeBytes, s.DiskTotalBytes, tc.want, tc.total)
			}
		})
	}
}
