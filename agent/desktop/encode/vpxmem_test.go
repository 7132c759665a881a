//go:build linux && cgo && !novpx

package encode

import (
	"bytes"
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rssAnon returns the process's resident anonymous memory in bytes.
func rssAnon(t *testing.T) int {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			kb, err := strconv.Atoi(strings.Fields(v)[0])
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no RssAnon in /proc/self/status")
	return 0
}

// TestReclaimTokenBuffer checks that a 1080p encoder gives back its token
// buffer (48 MiB, zeroed by libvpx at init) and so adds little resident
// memory.
func TestReclaimTokenBuffer(t *testing.T) {
	before := rssAnon(t)
	enc := newTestEncoder(t, Config{Width: 1920, Height: 1080})
	grew := rssAnon(t) - before
	t.Logf("reclaimed %.1f MiB; resident anonymous memory grew by %.1f MiB", float64(enc.reclaimed)/(1<<20), float64(grew)/(1<<20))
	if enc.reclaimed < 40<<20 {
		t.Errorf("reclaimed %d bytes, want the token buffer's 48 MiB", enc.reclaimed)
	}
	if grew > 24<<20 {
		t.Errorf("resident anonymous memory grew by %d bytes, want under 24 MiB", grew)
	}
}

// TestReclaimSameStream encodes the same frames with and without the
// reclaim: the streams must be identical, byte for byte (dropped pages
// read back as the zeros they held).
func TestReclaimSameStream(t *testing.T) {
	const w, h, n = 1280, 720, 24
	canvas := newTextCanvas(w, h, n*8)
	for _, threads := range []int{1, 2} {
		var streams [2][][]byte
		for i, keep := range []bool{true, false} {
			tu := defaultTuning
			tu.keepPages = keep
			enc, err := newVP8(Config{Width: w, Height: h, Threads: threads}, tu)
			if err != nil {
				t.Fatal(err)
			}
			if keep == (enc.reclaimed != 0) {
				t.Fatalf("keepPages %v: reclaimed %d bytes", keep, enc.reclaimed)
			}
			for f := range n {
				switch f {
				case 8:
					enc.ForceKeyframe()
				case 14:
					if err := enc.SetBitrate(600); err != nil {
						t.Fatal(err)
					}
				}
				frame, _, err := enc.Encode(canvas.screen(f*8), canvas.stride, time.Duration(f)*frameStep)
				if err != nil {
					t.Fatal(err)
				}
				streams[i] = append(streams[i], frame)
			}
			enc.Close()
		}
		for f := range n {
			if !bytes.Equal(streams[0][f], streams[1][f]) {
				t.Errorf("threads %d: frame %d differs (%d bytes without the reclaim, %d with)", threads, f, len(streams[0][f]), len(streams[1][f]))
			}
		}
	}
}

// TestReclaimAfterClose opens encoders one after another at sizes whose
// token buffers glibc would, by default, take from its heap once a
// larger block has been freed: with the mmap threshold fixed, each
// encoder's token buffer is still found and given back.
func TestReclaimAfterClose(t *testing.T) {
	for i, size := range [][2]int{{1280, 720}, {1280, 720}, {1024, 768}} {
		enc, err := NewVP8(Config{Width: size[0], Height: size[1]})
		if err != nil {
			t.Fatal(err)
		}
		img := newImage(size[0], size[1])
		for f := range 5 {
			testPattern(img, f)
			if _, _, err := enc.Encode(img.pix, img.stride, time.Duration(f)*frameStep); err != nil {
				t.Fatal(err)
			}
		}
		reclaimed := enc.(*vp8Encoder).reclaimed
		enc.Close()
		// 24×16 tokens of 16 bytes per macroblock.
		want := (size[0] / 16) * (size[1] / 16) * 24 * 16 * 16 * 3 / 4
		if reclaimed < want {
			t.Errorf("encoder %d (%d×%d): reclaimed %d bytes, want at least %d", i, size[0], size[1], reclaimed, want)
		}
	}
}

// fakeBlock lays out, in a mapping of its own, a block the way glibc and
// vpx_memalign do for a large allocation: the chunk header [0,
// size|IS_MMAPPED], 8 unused bytes, the malloc pointer, then the data.
// With bad, the stored malloc pointer is wrong. It returns the mapping and
// the address of the data.
func fakeBlock(t *testing.T, size int, bad bool) ([]byte, uintptr) {
	t.Helper()
	m, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(m) })
	p := addr(m)
	putWord(m, 8, uint64(size)|2)
	putWord(m, 24, uint64(p+16))
	if bad {
		putWord(m, 24, uint64(p+8))
	}
	return m, p + 32
}

func addr(m []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(m))) }

func putWord(m []byte, off int, v uint64) { binary.NativeEndian.PutUint64(m[off:], v) }

// resident returns which pages of m are resident.
func resident(t *testing.T, m []byte) []bool {
	t.Helper()
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, addr(m), uintptr(len(m)), uintptr(unsafe.Pointer(unsafe.SliceData(vec)))); errno != 0 {
		t.Fatal(errno)
	}
	out := make([]bool, len(vec))
	for i, v := range vec {
		out[i] = v&1 != 0
	}
	return out
}

// TestReclaimFrom checks the block search and the page dropping on memory
// laid out like libvpx's: only the zero pages of large blocks in mappings
// of their own, reachable in two steps through blocks vpx_memalign
// allocated, are dropped, and nothing else is touched.
func TestReclaimFrom(t *testing.T) {
	pg := os.Getpagesize()
	const big = 4 << 20
	// root -> mid -> tok (reached: dropped); mid -> mid2 -> deep (one step
	// too deep: kept); root -> bad (wrong signature: kept); root -> a
	// PROT_NONE mapping (must not be read). mid is a block from a malloc
	// heap, not a mapping of its own.
	rootMap, root := fakeBlock(t, pg, false)
	heapMap, err := unix.Mmap(-1, 0, 4*pg, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(heapMap)
	const chunk = 0x110 // a heap chunk of 0x800 bytes, in use, its predecessor too
	putWord(heapMap, chunk+8, 0x800|1)
	real := addr(heapMap) + chunk + 16
	mid := real + 16 // vpx_memalign(32, ...)
	putWord(heapMap, chunk+16+8, uint64(real))
	mid2Map, mid2 := fakeBlock(t, 4*pg, false)
	tokMap, tok := fakeBlock(t, big, false)
	deepMap, deep := fakeBlock(t, big, false)
	badMap, bad := fakeBlock(t, big, true)
	none, err := unix.Mmap(-1, 0, pg, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(none)

	for i, w := range []uintptr{42, mid, bad, addr(none) + 32, 0} {
		putWord(rootMap, 32+8*i, uint64(w))
	}
	putWord(heapMap, int(mid-addr(heapMap))+8, uint64(tok))
	putWord(heapMap, int(mid-addr(heapMap))+24, uint64(mid2))
	putWord(mid2Map, 32, uint64(deep))
	putWord(tokMap, 32+64, 0x1234)
	for _, m := range [][]byte{tokMap, deepMap, badMap} {
		for i := pg; i < len(m); i += pg {
			m[i] = 0 // resident, zero
		}
	}
	tokMap[5*pg+100] = 7                                // one page with data
	unix.Madvise(tokMap[7*pg:8*pg], unix.MADV_DONTNEED) // one page not resident

	dropped := reclaimFrom(root)

	// tok: all pages but the header page, the data page and the page that
	// was not resident.
	if want := (big/pg - 3) * pg; dropped != want {
		t.Errorf("dropped %d bytes, want %d", dropped, want)
	}
	for i, r := range resident(t, tokMap) {
		if want := i == 0 || i == 5; r != want {
			t.Errorf("token block page %d: resident %v, want %v", i, r, want)
		}
	}
	if tokMap[5*pg+100] != 7 || binary.NativeEndian.Uint64(tokMap[32+64:]) != 0x1234 {
		t.Error("the token block's data changed")
	}
	for name, m := range map[string][]byte{"deep": deepMap, "bad": badMap} {
		for i, r := range resident(t, m) {
			if !r {
				t.Errorf("%s block page %d was dropped", name, i)
				break
			}
		}
	}
}
