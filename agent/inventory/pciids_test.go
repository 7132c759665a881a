package inventory

import (
	"os"
	"testing"
)

func TestParsePCIIDs(t *testing.T) {
	f, err := os.Open("testdata/pci.ids")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids := []pciID{
		{"10de", "2484"}, // known vendor and device
		{"8086", "ffff"}, // known vendor, unknown device
		{"abcd", "0001"}, // unknown vendor
		{"1af4", "1050"}, // device listed after a subsystem line
	}
	got, err := parsePCIIDs(f, ids)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	check("vendor 10de", got.vendors["10de"], "NVIDIA Corporation")
	check("device 10de:2484", got.devices[ids[0]], "GA104 [GeForce RTX 3070]")
	check("vendor 8086", got.vendors["8086"], "Intel Corporation")
	check("device 8086:ffff", got.devices[ids[1]], "")
	check("vendor abcd", got.vendors["abcd"], "")
	check("device 1af4:1050", got.devices[ids[3]], "Virtio 1.0 GPU")
	if n := len(got.devices); n != 2 {
		t.Errorf("resolved %d devices, want 2: %v", n, got.devices)
	}
}
