package webtest

import "syscall"

// openFileLimit is this process's limit on open files (the soft one, which
// Go raises to the hard one at start-up).
func openFileLimit() (uint64, bool) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, false
	}
	return l.Cur, true
}
