package diag

import (
	"io"
	"os"
)

// readCappedFile reads up to limit bytes of a file.
func readCappedFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}
