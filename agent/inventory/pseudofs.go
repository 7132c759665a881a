package inventory

import "strings"

// pseudoFS lists file system types that are not storage a technician cares
// about: kernel interfaces, memory-backed file systems, container layers,
// read-only package images (snap squashfs loops) and automounter
// placeholders, on Linux, macOS and the BSDs.
var pseudoFS = map[string]bool{
	"autofs":      true,
	"binfmt_misc": true,
	"bpf":         true,
	"cgroup":      true,
	"cgroup2":     true,
	"configfs":    true,
	"debugfs":     true,
	"devfs":       true,
	"devpts":      true,
	"devtmpfs":    true,
	"efivarfs":    true,
	"fdescfs":     true,
	"fusectl":     true,
	"hugetlbfs":   true,
	"linprocfs":   true,
	"linsysfs":    true,
	"mqueue":      true,
	"nfsd":        true,
	"nsfs":        true,
	"nullfs":      true,
	"overlay":     true,
	"aufs":        true,
	"proc":        true,
	"procfs":      true,
	"pstore":      true,
	"ramfs":       true,
	"rootfs":      true,
	"rpc_pipefs":  true,
	"securityfs":  true,
	"selinuxfs":   true,
	"squashfs":    true,
	"sysfs":       true,
	"tmpfs":       true,
	"tracefs":     true,
	"none":        true,
	// FUSE file systems that are views, not storage.
	"fuse.gvfsd-fuse":          true,
	"fuse.portal":              true,
	"fuse.lxcfs":               true,
	"fuse.snapfuse":            true,
	"fuse.xdg-document-portal": true,
}

// IsPseudoFS reports whether fstype names a pseudo, memory-backed or
// otherwise non-storage file system (proc, sysfs, cgroup*, tmpfs, overlay,
// squashfs, ...) that inventory and health skip. Callers still report "/"
// whatever its type: in a container it is an overlay.
func IsPseudoFS(fstype string) bool {
	return pseudoFS[strings.ToLower(strings.TrimSpace(fstype))]
}

// keepMount reports whether a mount belongs in the report.
func keepMount(mountpoint, fstype string) bool {
	return mountpoint == "/" || !IsPseudoFS(fstype)
}
