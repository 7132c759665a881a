package wire

import "strings"

// stripEscapes removes terminal escape sequences: CSI ("ESC [ … final",
// colours and cursor movement), string sequences (OSC, DCS, SOS, PM, APC,
// ended by BEL or ST; window titles, hyperlinks, clipboard writes) and
// other ESC sequences, in their 7-bit and C1 forms. Stray control
// characters are left for CleanString.
func stripEscapes(s string) string {
	if !strings.ContainsAny(s, "\x1b\u009b\u0090\u0098\u009d\u009e\u009f") {
		return s
	}
	rs := []rune(s)
	var b strings.Builder
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		var next rune
		if i+1 < len(rs) {
			next = rs[i+1]
		}
		switch {
		case r == 0x9b || r == 0x1b && next == '[': // CSI
			if r == 0x1b {
				i++
			}
			for i+1 < len(rs) && rs[i+1] >= 0x20 && rs[i+1] <= 0x3f { // parameters, intermediates
				i++
			}
			if i+1 < len(rs) && rs[i+1] >= 0x40 && rs[i+1] <= 0x7e { // final byte
				i++
			}
		case r == 0x90 || r == 0x98 || r == 0x9d || r == 0x9e || r == 0x9f ||
			r == 0x1b && strings.ContainsRune("PX]^_", next): // string sequences
			if r == 0x1b {
				i++
			}
			for i+1 < len(rs) {
				i++
				if rs[i] == 0x07 || rs[i] == 0x9c {
					break
				}
				if rs[i] == 0x1b && i+1 < len(rs) && rs[i+1] == '\\' {
					i++
					break
				}
			}
		case r == 0x1b: // ESC, intermediates, final
			for i+1 < len(rs) && rs[i+1] >= 0x20 && rs[i+1] <= 0x2f {
				i++
			}
			if i+1 < len(rs) && rs[i+1] >= 0x30 && rs[i+1] <= 0x7e {
				i++
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// IsBidiControl reports the invisible characters that change the display
// order of text (the "Trojan Source" characters).
func IsBidiControl(r rune) bool {
	switch {
	case r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}
