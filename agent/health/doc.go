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
// The machine's cpu_percent is a share of the whole machine: 0 to 100
// whatever the number of CPUs. A process's cpu_percent (top_cpu,
// top_memory) is a percent of one core, as top shows it: a process
// keeping two cores busy shows 200, at most 100 per logical CPU
// ([proctab.CPUPercent]). Rates are bytes per second.
//
// # Cost
//
// The agent samples every 15 s and aims at 0.1 % of one core, i.e. about
// 15 ms of CPU per sample. The process table comes from agent/proctab (on
// Linux one read of /proc/<pid>/stat per process, reused buffer); users
// are resolved only for the processes reported, and cached. Nothing
// spawns a process.
//
// # Platforms
//
// Everything is portable (gopsutil, and agent/proctab for processes)
// except: temperatures, Linux only (hwmon and thermal zones; elsewhere
// gopsutil needs WMI or cgo, too costly or unavailable); load average, not
// on Windows (it has none; gopsutil's emulation runs a background
// goroutine); processes on macOS builds without cgo (gopsutil would spawn
// ps per process). Unsupported readings are left empty; they are logged at
// debug level with [ErrNotSupported].
package health
