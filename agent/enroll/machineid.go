package enroll

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// ErrNoMachineID is returned by MachineID where the platform has no
// machine identifier (or it cannot be read); enrollment then sends none,
// and enrolling again adds a device instead of replacing it.
var ErrNoMachineID = errors.New("enroll: this platform has no machine id")

// machineIDApp keys the machine id to Deskside, as systemd's
// sd_id128_get_machine_app_specific does: the relay never sees the raw id,
// and other applications' ids of the machine cannot be linked to it.
const machineIDApp = "deskside-agent enrollment machine id v1"

// MachineID returns a stable identifier of this machine specific to
// Deskside: an HMAC-SHA256 of an application id keyed with the OS's
// machine id (/etc/machine-id, Windows' MachineGuid, macOS'
// IOPlatformUUID), truncated to 128 bits, in hex.
func MachineID() (string, error) {
	raw, err := rawMachineID()
	if err != nil {
		return "", err
	}
	return appSpecificID(raw)
}

// appSpecificID derives the Deskside machine id from the OS's one.
func appSpecificID(raw string) (string, error) {
	raw = strings.ToLower(strings.TrimSpace(raw))
	if raw == "" || strings.Trim(raw, "0-") == "" {
		return "", ErrNoMachineID // empty or all zero: not set up
	}
	m := hmac.New(sha256.New, []byte(raw))
	m.Write([]byte(machineIDApp))
	return hex.EncodeToString(m.Sum(nil)[:16]), nil
}
