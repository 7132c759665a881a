package inventory

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxStringBytes bounds every string taken from the system before the wire
// caps (which count runes and are smaller) are applied.
const maxStringBytes = 4096

// clean makes s safe to report: valid UTF-8, no NULs or control characters
// (tabs and newlines become spaces), no leading or trailing space, at most
// maxStringBytes bytes (cut on a rune boundary).
func clean(s string) string {
	if len(s) > maxStringBytes*2 {
		s = s[:maxStringBytes*2]
	}
	ok := utf8.ValidString(s)
	if ok {
		for _, r := range s {
			if unicode.IsControl(r) {
				ok = false
				break
			}
		}
	}
	if !ok {
		var b strings.Builder
		b.Grow(len(s))
		for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
			switch {
			case r == 0:
				continue
			case r == '\t' || r == '\n' || r == '\r':
				b.WriteByte(' ')
			case unicode.IsControl(r):
				continue
			default:
				b.WriteRune(r)
			}
		}
		s = b.String()
	}
	s = strings.TrimSpace(s)
	if len(s) > maxStringBytes {
		cut := maxStringBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = strings.TrimSpace(s[:cut])
	}
	return s
}

// placeholders are values firmware vendors leave in DMI and serial fields
// instead of real data; they are reported as empty.
var placeholders = map[string]bool{
	"":                                     true,
	"0":                                    true,
	"none":                                 true,
	"n/a":                                  true,
	"na":                                   true,
	"not specified":                        true,
	"not applicable":                       true,
	"not available":                        true,
	"default string":                       true,
	"to be filled by o.e.m.":               true,
	"to be filled by oem":                  true,
	"system manufacturer":                  true,
	"system product name":                  true,
	"system serial number":                 true,
	"system version":                       true,
	"chassis serial number":                true,
	"base board serial number":             true,
	"0123456789":                           true,
	"123456789":                            true,
	"00000000":                             true,
	"oem":                                  true,
	"o.e.m.":                               true,
	"unknown":                              true,
	"invalid":                              true,
	"00000000-0000-0000-0000-000000000000": true,
	"ffffffff-ffff-ffff-ffff-ffffffffffff": true,
}

// realValue returns s cleaned, or "" when it is a known placeholder.
func realValue(s string) string {
	s = clean(s)
	if placeholders[strings.ToLower(s)] {
		return ""
	}
	return s
}
