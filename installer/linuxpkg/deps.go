package linuxpkg

import (
	"debug/elf"
	"fmt"
	"os/exec"
	"path"
	"runtime"
	"slices"
	"strings"
)

// neededLibraries are the shared libraries (DT_NEEDED sonames) that the
// binaries link, sorted; none for static ones.
func neededLibraries(bins []string) ([]string, error) {
	var libs []string
	for _, b := range bins {
		f, err := elf.Open(b)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", b, err)
		}
		l, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read the libraries %s needs: %w", b, err)
		}
		libs = append(libs, l...)
	}
	slices.Sort(libs)
	return slices.Compact(libs), nil
}

// dependsOn is what a package of format depends on to have libs: for rpm
// the sonames themselves, as rpm's automatic requires name them
// ("libvpx.so.7()(64bit)"), so any distribution's package providing them
// fits; for deb the Debian packages holding them on the build machine
// (dpkg -S), as dpkg-shlibdeps would name them.
func dependsOn(format string, libs []string) ([]string, error) {
	var deps []string
	for _, lib := range libs {
		switch format {
		case "rpm":
			suffix := "()"
			if strings.Contains(runtime.GOARCH, "64") {
				suffix += "(64bit)"
			}
			deps = append(deps, lib+suffix)
		case "deb":
			pkgs, err := debPackageOf(lib)
			if err != nil {
				return nil, err
			}
			deps = append(deps, pkgs...)
		}
	}
	slices.Sort(deps)
	return slices.Compact(deps), nil
}

// debPackageOf is the Debian package that installs the library soname.
func debPackageOf(soname string) ([]string, error) {
	out, err := exec.Command("dpkg", "-S", "*/"+soname).Output()
	if err != nil {
		return nil, fmt.Errorf("dpkg -S */%s: %v: the .deb names the Debian packages of the libraries the agent links; build it on Debian or Ubuntu with the library installed (make deps-run)", soname, err)
	}
	var pkgs []string
	for line := range strings.Lines(string(out)) {
		names, file, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok || path.Base(file) != soname {
			continue
		}
		for n := range strings.SplitSeq(names, ", ") {
			n, _, _ = strings.Cut(n, ":") // libvpx7:amd64
			pkgs = append(pkgs, n)
		}
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("no Debian package installs %s (dpkg -S): install the library's package", soname)
	}
	slices.Sort(pkgs)
	return slices.Compact(pkgs)[:1], nil
}
