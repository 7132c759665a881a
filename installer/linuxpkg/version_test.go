package linuxpkg

import (
	"os/exec"
	"testing"

	"github.com/deskside/deskside/internal/testkit"
)

func TestPackageVersion(t *testing.T) {
	for _, tc := range []struct {
		describe string
		commits  int
		want     string
	}{
		{"v1.2.3", 10, "1.2.3"},
		{"1.2.3", 10, "1.2.3"},
		{"v1.2.3-4-gabc1234", 10, "1.2.3+4.gabc1234"},
		{"v1.2.3-4-gabc1234-dirty", 10, "1.2.3+4.gabc1234.dirty"},
		{"abc1234", 812, "0.0.0+812.gabc1234"},
		{"abc1234-dirty", 812, "0.0.0+812.gabc1234.dirty"},
	} {
		t.Run(tc.describe, func(t *testing.T) {
			got, err := PackageVersion(tc.describe, tc.commits)
			if err != nil || got != tc.want {
				t.Fatalf("PackageVersion(%q) = %q, %v; want %q", tc.describe, got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "release-1", "v1.2", "v1.2.3; rm -rf /", "V1.2.3-x"} {
		if v, err := PackageVersion(bad, 1); err == nil {
			t.Errorf("PackageVersion(%q) = %q, want an error", bad, v)
		}
	}
}

// TestPackageVersionOrder checks with dpkg itself that the versions sort
// the way the commits do.
func TestPackageVersionOrder(t *testing.T) {
	_, err := exec.LookPath("dpkg")
	testkit.Need(t, "dpkg", err, "run the tests on Debian (dpkg orders the versions)")
	order := []string{"0.0.0+9.gaaaaaaa", "0.0.0+10.gbbbbbbb", "0.0.0+10.gbbbbbbb.dirty", "0.1.0", "0.1.0+1.gccccccc", "0.1.0+2.gddddddd", "0.1.1"}
	for i := 1; i < len(order); i++ {
		if err := exec.Command("dpkg", "--compare-versions", order[i-1], "lt", order[i]).Run(); err != nil {
			t.Errorf("dpkg: %s is not older than %s", order[i-1], order[i])
		}
	}
}
