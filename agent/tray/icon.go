package tray

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
)

// iconPNG draws the tray icon: a blue screen on a stand, with an amber
// dot while a remote session runs.
func iconPNG(session bool) []byte {
	const n = 32
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	blue, dark, white := color.NRGBA{0x25, 0x63, 0xeb, 0xff}, color.NRGBA{0x1e, 0x3a, 0x8a, 0xff}, color.NRGBA{0xff, 0xff, 0xff, 0xff}
	fill := func(x0, y0, x1, y1 int, c color.NRGBA) {
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				img.SetNRGBA(x, y, c)
			}
		}
	}
	fill(2, 4, 30, 23, blue)
	fill(11, 25, 21, 28, dark)
	fill(14, 23, 18, 25, dark)
	fill(7, 9, 25, 11, white)
	fill(7, 13, 21, 15, white)
	fill(7, 17, 17, 19, white)
	if session {
		for y := range n {
			for x := range n {
				if dx, dy := x-25, y-8; dx*dx+dy*dy <= 25 {
					img.SetNRGBA(x, y, color.NRGBA{0xf5, 0x9e, 0x0b, 0xff})
				}
			}
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// iconICO wraps a 32×32 PNG in an ICO container (Windows Vista and later
// read PNG entries).
func iconICO(p []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, []uint16{0, 1, 1})
	b.Write([]byte{32, 32, 0, 0})
	binary.Write(&b, binary.LittleEndian, []uint16{1, 32})
	binary.Write(&b, binary.LittleEndian, []uint32{uint32(len(p)), 22})
	b.Write(p)
	return b.Bytes()
}
