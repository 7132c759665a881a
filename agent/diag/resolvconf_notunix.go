//go:build !unix

package diag

import "fmt"

const resolvConfPath = ""

// systemNameservers: Windows keeps them per adapter in the registry, not
// read yet.
func systemNameservers() ([]string, error) {
	return nil, fmt.Errorf("system nameservers: %w", ErrNotSupported)
}
