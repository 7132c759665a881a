package inventory

import (
	"context"
	"strings"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// refineOS replaces gopsutil's platform id ("ubuntu") with the distribution
// name from os-release ("Ubuntu") and adds its BUILD_ID, which only some
// distributions (Arch: "rolling", image-based ones) set.
func refineOS(_ context.Context, o *desksidev1.OperatingSystem) {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		b, err := readCapped(p, maxAttrBytes)
		if err != nil {
			continue
		}
		kv := parseOSRelease(string(b))
		if v := clean(kv["NAME"]); v != "" {
			o.Name = v
		}
		if o.Version == "" {
			o.Version = clean(kv["VERSION_ID"])
		}
		o.Build = clean(kv["BUILD_ID"])
		return
	}
}

// parseOSRelease parses os-release(5): KEY=value lines, values optionally
// quoted with shell-style escapes.
func parseOSRelease(s string) map[string]string {
	kv := map[string]string{}
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		kv[strings.TrimSpace(k)] = unquoteOSRelease(strings.TrimSpace(v))
	}
	return kv
}

// unquoteOSRelease strips shell quotes; inside double quotes a backslash
// escapes the next character.
func unquoteOSRelease(v string) string {
	if len(v) < 2 || (v[0] != '"' && v[0] != '\'') || v[len(v)-1] != v[0] {
		return v
	}
	q, v := v[0], v[1:len(v)-1]
	if q == '\'' || !strings.ContainsRune(v, '\\') {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
