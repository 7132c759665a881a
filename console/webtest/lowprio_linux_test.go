package webtest

import "syscall"

// lowerPriority sets process pid's nice value to 10; processes it starts
// afterwards inherit it.
func lowerPriority(pid int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, pid, 10)
}
