package proctab

import (
	"encoding/binary"
	"os"
	"sync"
	"unsafe"
)

var (
	clkTckOnce sync.Once
	clkTck     = 100.0
)

// clockTicks returns USER_HZ, the unit of /proc/<pid>/stat times, from
// the AT_CLKTCK entry of the auxiliary vector (100 on every mainstream
// architecture, which is also the fallback).
func clockTicks() float64 {
	clkTckOnce.Do(func() {
		b, err := os.ReadFile("/proc/self/auxv")
		if err != nil {
			return
		}
		const atClkTck = 17
		w := int(unsafe.Sizeof(uintptr(0)))
		for i := 0; i+2*w <= len(b); i += 2 * w {
			var k, v uint64
			if w == 8 {
				k, v = binary.NativeEndian.Uint64(b[i:]), binary.NativeEndian.Uint64(b[i+w:])
			} else {
				k, v = uint64(binary.NativeEndian.Uint32(b[i:])), uint64(binary.NativeEndian.Uint32(b[i+w:]))
			}
			if k == atClkTck && v > 0 {
				clkTck = float64(v)
				return
			}
		}
	})
	return clkTck
}
