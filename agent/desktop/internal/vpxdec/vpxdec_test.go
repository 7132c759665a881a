//go:build linux && cgo && !novpx

package vpxdec

import "testing"

func TestDecodeGarbage(t *testing.T) {
	d, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]byte{nil, {0}, []byte("not a vp8 frame at all, not at all")} {
		if _, err := d.Decode(in); err == nil {
			t.Errorf("Decode(%q) succeeded", in)
		}
	}
	d.Close()
	d.Close()
	if _, err := d.Decode([]byte{1, 2, 3}); err == nil {
		t.Error("Decode after Close succeeded")
	}
}
