package wire

import (
	"fmt"
	"strings"
)

// FormatBytes renders a byte count the way technicians read it: "16 GiB",
// "7.8 GiB", "512 MiB". The relay writes inventory history with it and the
// consoles show sizes with it, so both read the same.
func FormatBytes(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 || f >= 100 || f == float64(int64(f)) {
		return fmt.Sprintf("%.0f %s", f, units[i])
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", f), ".0") + " " + units[i]
}
