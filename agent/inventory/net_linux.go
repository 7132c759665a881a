package inventory

import (
	"errors"
	"strconv"
	"strings"
)

// nicSpeedMbps reads the negotiated link speed. Virtual interfaces and
// links that are down have none (EINVAL or -1).
func nicSpeedMbps(name string) (uint64, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return 0, errors.New("bad interface name")
	}
	s, err := readAttr("/sys/class/net/" + name + "/speed")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if n <= 0 || n == 0xffffffff {
		return 0, errors.New("speed unknown")
	}
	return uint64(n), nil
}
