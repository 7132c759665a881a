package inventory

import "testing"

// TestStableBootTime: a boot time that wobbles by a second (the kernel's
// clock minus uptime) keeps the first value; a jump of minutes is taken.
func TestStableBootTime(t *testing.T) {
	bootTime.Store(0)
	defer bootTime.Store(0)
	for _, c := range []struct{ in, want int64 }{
		{1000, 1000}, {1001, 1000}, {999, 1000}, {1060, 1000}, {1061, 1061}, {1062, 1061}, {900, 900},
	} {
		if got := stableBootTime(c.in); got != c.want {
			t.Fatalf("stableBootTime(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}
