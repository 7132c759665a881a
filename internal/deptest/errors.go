package deptest

import (
	"errors"
	"fmt"
	"strings"
)

var errNoModule = errors.New("not inside a Go module: run the test from the Deskside checkout")

// ListError is returned when the go command fails.
type ListError struct {
	Args   []string
	Err    error
	Stderr string
}

func (e *ListError) Error() string {
	return fmt.Sprintf("%s: %v\n%s", strings.Join(e.Args, " "), e.Err, e.Stderr)
}

func (e *ListError) Unwrap() error { return e.Err }
