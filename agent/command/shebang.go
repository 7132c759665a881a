//go:build linux || darwin

package command

import (
	"fmt"
	"strings"
)

const (
	// defaultInterpreter runs scripts without a #! line.
	defaultInterpreter = "/bin/sh"
	// maxShebang bounds the #! line.
	maxShebang = 4096
)

// parseShebang returns the interpreter named by the script's #! line and
// its optional argument (the rest of the line, as one argument, as Linux
// passes it), or defaultInterpreter for a script without one.
func parseShebang(script string) (interp, arg string, err error) {
	rest, ok := strings.CutPrefix(script, "#!")
	if !ok {
		return defaultInterpreter, "", nil
	}
	line, _, _ := strings.Cut(rest, "\n")
	if len(line) > maxShebang {
		return "", "", fmt.Errorf("%w: #! line longer than %d bytes", ErrBadRequest, maxShebang)
	}
	line = strings.Trim(line, " \t\r")
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		interp, arg = line[:i], strings.Trim(line[i:], " \t")
	} else {
		interp = line
	}
	switch {
	case interp == "":
		return "", "", fmt.Errorf("%w: empty #! line", ErrBadRequest)
	case !strings.HasPrefix(interp, "/"):
		return "", "", fmt.Errorf("%w: #! interpreter %q is not an absolute path", ErrBadRequest, interp)
	}
	return interp, arg, nil
}
