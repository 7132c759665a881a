//go:build !windows

package action

// toolDirs are the only directories tools are taken from.
func toolDirs() []string { return []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} }

// toolEnv is the fixed environment of tools; LANG=C keeps their messages
// recognisable.
func toolEnv() []string {
	return []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "LC_ALL=C"}
}
