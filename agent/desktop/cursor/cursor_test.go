package cursor

import (
	"bytes"
	"errors"
	"image/png"
	"testing"
)

func TestEncodeARGB(t *testing.T) {
	for _, tt := range []struct {
		name           string
		w, h, hx, hy   int
		wantW, wantH   int
		wantHX, wantHY int
	}{
		{name: "small", w: 24, h: 24, hx: 3, hy: 4, wantW: 24, wantH: 24, wantHX: 3, wantHY: 4},
		{name: "at the cap", w: MaxSize, h: MaxSize, hx: 10, hy: 10, wantW: MaxSize, wantH: MaxSize, wantHX: 10, wantHY: 10},
		{name: "wide is scaled", w: 512, h: 128, hx: 256, hy: 64, wantW: 256, wantH: 64, wantHX: 128, wantHY: 32},
		{name: "tall is scaled", w: 100, h: 1000, hx: 50, hy: 999, wantW: 25, wantH: 256, wantHX: 12, wantHY: 255},
		{name: "hot spot outside is clamped", w: 8, h: 8, hx: 20, hy: 9, wantW: 8, wantH: 8, wantHX: 7, wantHY: 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			argb := make([]uint32, tt.w*tt.h)
			for i := range argb {
				// Half-transparent premultiplied red, and one broken pixel
				// whose colour exceeds its alpha.
				argb[i] = 0x80800000
			}
			argb[0] = 0x10ffffff
			s, err := EncodeARGB(tt.w, tt.h, tt.hx, tt.hy, argb)
			if err != nil {
				t.Fatal(err)
			}
			if s.Width != tt.wantW || s.Height != tt.wantH || s.HotX != tt.wantHX || s.HotY != tt.wantHY {
				t.Fatalf("shape %dx%d hot %d,%d; want %dx%d hot %d,%d", s.Width, s.Height, s.HotX, s.HotY, tt.wantW, tt.wantH, tt.wantHX, tt.wantHY)
			}
			img, err := png.Decode(bytes.NewReader(s.PNG))
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() != s.Width || b.Dy() != s.Height {
				t.Fatalf("PNG is %v", b)
			}
			r, g, b, a := img.At(s.Width-1, s.Height-1).RGBA()
			if a>>8 != 0x80 || r>>8 != 0x80 || g != 0 || b != 0 {
				t.Errorf("pixel = %x %x %x %x, want half-transparent red", r>>8, g>>8, b>>8, a>>8)
			}
		})
	}
	if _, err := EncodeARGB(4, 4, 0, 0, make([]uint32, 15)); err == nil {
		t.Error("EncodeARGB accepted too few pixels")
	}
	if _, err := EncodeARGB(0, 4, 0, 0, nil); err == nil {
		t.Error("EncodeARGB accepted an empty image")
	}
}

func TestConfig(t *testing.T) {
	var c Config
	if err := c.CheckAndSetDefaults(); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("empty Config: %v, want ErrBadConfig", err)
	}
	c = Config{OnMove: func(Position) {}}
	if err := c.CheckAndSetDefaults(); err != nil || c.Interval != DefaultInterval || c.OnShape == nil || c.Logger == nil {
		t.Fatalf("defaults: %v %+v", err, c)
	}
}
