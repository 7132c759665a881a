//go:build unix

package diag

import (
	"bufio"
	"bytes"
	"strings"
)

const resolvConfPath = "/etc/resolv.conf"

// systemNameservers lists the nameservers of /etc/resolv.conf.
func systemNameservers() ([]string, error) {
	b, err := readCappedFile(resolvConfPath, 64<<10)
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return out, nil
}
