package linuxpkg

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkPackageSize builds the packages and reports their sizes in MB
// (10^6 bytes): the agent .deb is the figure (≤ 15 MB). Run with
// -benchtime 1x (make bench does).
func BenchmarkPackageSize(b *testing.B) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		b.Fatal(err)
	}
	var res *Result
	for b.Loop() {
		res, err = Build(context.Background(), Options{Root: root, Out: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
	}
	for metric, key := range map[string]string{
		"agent-deb-MB": Agent + ".deb", "agent-rpm-MB": Agent + ".rpm",
		"relay-deb-MB": Relay + ".deb", "relay-rpm-MB": Relay + ".rpm",
	} {
		fi, err := os.Stat(res.Packages[key])
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/1e6, metric)
	}
}
