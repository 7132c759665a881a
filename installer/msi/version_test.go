package msi

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/deskside/deskside/internal/testkit"
)

func TestProductVersion(t *testing.T) {
	for _, tt := range []struct {
		describe string
		commits  int
		want     string
		err      bool
	}{
		{"v1.4.2", 300, "1.4.300", false},
		{"v1.4.2-7-gabcdef0-dirty", 307, "1.4.307", false},
		{"2.0", 12, "2.0.12", false},
		{"abcdef0", 5, "0.0.5", false},
		{"abcdef0-dirty", 5, "0.0.5", false},
		{"1234567", 5, "0.0.5", false}, // a bare hash of digits is not a tag
		{"v1.4.2", 0, "", true},
		{"v1.4.2", 65536, "", true},
		{"v256.0.0", 3, "", true},
		{"v1.300", 3, "", true},
	} {
		got, err := ProductVersion(tt.describe, tt.commits)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ProductVersion(%q, %d) = %q, %v; want %q (error %v)", tt.describe, tt.commits, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrVersion) {
			t.Errorf("ProductVersion(%q, %d): error %v is not ErrVersion", tt.describe, tt.commits, err)
		}
	}
}

// TestGitVersion reads this checkout's version as make msi does.
func TestGitVersion(t *testing.T) {
	want, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
	testkit.Need(t, "a git checkout", err, "run the tests in a git clone of the repository")
	v, err := GitVersion(context.Background(), ".", "")
	if err != nil {
		t.Fatal(err)
	}
	if v.Describe != strings.TrimSpace(string(want)) {
		t.Errorf("Describe = %q, want %q", v.Describe, want)
	}
	if p, _ := ProductVersion(v.Describe, 1); len(strings.Split(v.Product, ".")) != 3 || p == "" {
		t.Errorf("Product = %q", v.Product)
	}
	if _, err := GitVersion(context.Background(), t.TempDir(), ""); !errors.Is(err, ErrVersion) {
		t.Errorf("GitVersion outside a checkout: %v, want ErrVersion", err)
	}
}
