//go:build !linux && !windows && !darwin

package enroll

// rawMachineID has no source on this platform.
func rawMachineID() (string, error) { return "", ErrNoMachineID }
