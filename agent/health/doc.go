// Package health takes the periodic health samples the agent reports: CPU,
// load, memory and swap, file system fill levels, network throughput, the
// busiest processes and temperatures, as a [desksidev1.HealthSample].
//
// A [Sampler] keeps the previous counters, so rates (CPU, network, process
// CPU) cover the time since the previous [Sampler.Sample]. The first call
// primes the counters and measures over [Options.PrimeInterval].
//
// # Units
//
// cpu_percent, of the machine and of each process, is a share of the whole
// machine: 0 to 100 whatever the number of CPUs (Task Manager's convention,
// not top's per-core one), so a process's value compares directly with the
// machine's. Rates are bytes per second.
//
// # Cost
//
// The agent samples every 15 s and aims at 0.1 % of one core, i.e. about
// 15 ms of CPU per sample. On Linux the process table is read straight from
// /proc/<pid>/stat (one read per process, reused buffer); names and users
// are resolved only for the processes reported, and user names are cached.
// Nothing spawns a process.
//
// # Platforms
//
// Everything is portable (gopsutil) except: processes on Linux (direct
// /proc); temperatures, Linux only (hwmon and thermal zones; elsewhere
// gopsutil needs WMI or cgo, too costly or unavailable); load average, not
// on Windows (it has none; gopsutil's emulation runs a background
// goroutine); processes on macOS builds without cgo (gopsutil would spawn
// ps per process). Unsupported readings are left empty; they are logged at
// debug level with [ErrNotSupported].
package health
