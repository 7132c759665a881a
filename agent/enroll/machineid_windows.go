package enroll

import (
	"fmt"

	"golang.org/x/sys/windows/registry"
)

// rawMachineID reads the MachineGuid Windows sets up at installation.
func rawMachineID() (string, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Cryptography`, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoMachineID, err)
	}
	defer k.Close()
	v, _, err := k.GetStringValue("MachineGuid")
	if err != nil {
		return "", fmt.Errorf("%w: MachineGuid: %v", ErrNoMachineID, err)
	}
	return v, nil
}
