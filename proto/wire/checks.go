package wire

import "slices"

// CheckNames are the diagnostic checks an agent runs (RunChecks.checks),
// sorted. The CLI refuses other names before it asks the relay; the
// agent's runner implements exactly these (agent/diag tests it).
var CheckNames = []string{
	"cpu.hogs", "cpu.load",
	"disk.inodes", "disk.smart", "disk.space",
	"logs.errors",
	"memory.pressure", "memory.swap",
	"network.dns", "network.gateway", "network.https", "network.interfaces", "network.proxy",
	"services.failed",
	"system.uptime",
	"time.sync",
	"updates.pending", "updates.reboot",
}

// IsCheckName reports whether name is one of CheckNames.
func IsCheckName(name string) bool {
	_, found := slices.BinarySearch(CheckNames, name)
	return found
}
