// Package inventory collects the hardware and software description of the
// workstation the agent runs on and returns it as a [desksidev1.Inventory].
//
// The agent depends on the [Reader] interface; [Collector] is the real
// implementation. A collection is split into sections (see the Section
// constants). A section the platform does not expose, or that cannot be
// read, is reported as a [desksidev1.CollectorError] inside the inventory
// instead of failing the whole collection; [Collector.Read] returns an error
// only when the context is done or none of the core sections (hostname, OS,
// CPU, memory) could be read.
//
// # Platforms
//
// Hostname, OS, boot time, CPU, memory, partitions and network interfaces
// come from portable code (gopsutil and the standard library) on every
// platform; logged-in users too, except on Windows. The Linux readers read
// /sys, /proc, /run/udev and the package databases directly. On other
// platforms the sections DMI (system and BIOS), disks, software, GPUs and
// batteries, and logged-in users on Windows, report an error wrapping
// [ErrNotSupported]; NIC link speed is left at zero.
//
// # Determinism
//
// Repeated fields are sorted (partitions by mountpoint, disks and NICs by
// name, software by name, source and version, ...) so that two
// collections of an unchanged machine are [proto.Equal] once collected_at
// is cleared. Values that move by themselves (partition used bytes,
// logged-in users, battery charge) naturally differ.
//
// # Hostile strings
//
// Every string read from the system is made valid UTF-8, stripped of NULs
// and control characters, trimmed, and capped; every repeated field is
// truncated to the relay's cap (see package wire), with a CollectorError
// saying so, so that one oversized section cannot get the whole report
// refused.
//
// # Choices
//
// Partitions: pseudo and memory-backed file systems are skipped (see
// [IsPseudoFS]), but "/" is always reported. Bind mounts and over-mounts are
// de-duplicated by mountpoint (the last mount wins, as the kernel shows it).
//
// Disks (Linux): only block devices backed by a bus device
// (/sys/block/X/device exists) with a non-zero size are reported. loop,
// ram, zram, nbd, md (software RAID) and dm-* (LVM, LUKS) devices are
// skipped: they are views of the physical disks, which are reported
// themselves. Empty removable slots (card readers, optical drives without
// media) have size zero and are skipped too.
//
// Software (Linux): /var/lib/dpkg/status is parsed directly; a package
// counts as installed when its Status is "<want> <flag> installed" or is
// waiting only for triggers, so held packages ("hold ok installed") are
// included. When one package name is installed for several architectures
// the names are qualified ("libc6:i386"). Where rpm is on PATH its database
// is listed with a fixed query and a timeout; gpg-pubkey pseudo-packages are
// skipped.
//
// NICs: loopback interfaces are skipped; "up" means administratively up and
// running (link up).
package inventory
