package service

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// FixedInstallPath is where the install hint suggests copying the agent.
const FixedInstallPath = "/usr/local/bin/deskside-agent"

// TemporaryDirs are the directories whose contents do not last: the
// system's temporary directories, where `go run` builds ($GOTMPDIR, else
// the temporary directory), and the Go build cache.
func TemporaryDirs() []string {
	dirs := []string{os.TempDir(), "/tmp", "/var/tmp", os.Getenv("GOTMPDIR"), os.Getenv("GOCACHE")}
	if d, err := os.UserCacheDir(); err == nil {
		dirs = append(dirs, filepath.Join(d, "go-build"))
	}
	return dirs
}

// IsTemporary reports whether path lies below one of dirs, after resolving
// symbolic links on both sides (so /tmp and /private/tmp on macOS match).
func IsTemporary(path string, dirs []string) bool {
	path = resolve(path)
	for _, d := range dirs {
		if d == "" {
			continue
		}
		d = resolve(d)
		if rel, err := filepath.Rel(d, path); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && rel != "." {
			return true
		}
	}
	return false
}

// resolve makes p absolute and resolves symbolic links in the longest
// part of it that exists.
func resolve(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	p = filepath.Clean(p)
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	dir := filepath.Dir(p)
	if dir == p {
		return p
	}
	return filepath.Join(resolve(dir), filepath.Base(p))
}

// Leftovers lists the files a service manager may leave behind for the
// service name below root ("/" on a real system): the SysV init script and
// its /etc/rc?.d start and kill links, the systemd unit and the launchd
// plist. Only what is provably the agent's is listed: a service file must
// be a regular file (not a link, such as `systemctl mask` makes) that
// names exe, the executable the service runs (as the files kardianos/service
// writes do); rc links only when the init script they point to is ours or
// gone. An admin's own unit or a packaged init script of the same name is
// left alone.
func Leftovers(root, name, exe string) []string {
	initScript := filepath.Join(root, "etc", "init.d", name)
	var out []string
	initOurs, initGone := false, false
	for _, p := range []string{
		initScript,
		filepath.Join(root, "etc", "systemd", "system", name+".service"),
		filepath.Join(root, "Library", "LaunchDaemons", name+".plist"),
	} {
		switch ours, err := namesExecutable(p, exe); {
		case err == nil && ours:
			out = append(out, p)
			initOurs = initOurs || p == initScript
		case errors.Is(err, os.ErrNotExist) && p == initScript:
			initGone = true
		}
	}
	if !initOurs && !initGone {
		return out
	}
	// rc links: S50name and K02name as kardianos/service makes them, and any
	// S??name/K??name link to the init script that update-rc.d may have made.
	links, _ := filepath.Glob(filepath.Join(root, "etc", "rc[0-6S].d", "[SK][0-9][0-9]"+name))
	for _, l := range links {
		fi, err := os.Lstat(l)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			continue
		}
		target, err := os.Readlink(l)
		if err != nil {
			continue
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(l), target)
		}
		// A link made over a fake root points at the real path; compare names.
		if filepath.Base(target) == name && filepath.Base(filepath.Dir(target)) == "init.d" {
			out = append(out, l)
		}
	}
	return out
}

// namesExecutable reports whether p is a regular file of at most 64 KiB
// that contains exe.
func namesExecutable(p, exe string) (bool, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > 64<<10 || exe == "" {
		return false, nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return false, err
	}
	return strings.Contains(string(b), exe), nil
}

// RemoveLeftovers removes what Leftovers lists and returns what it removed.
func RemoveLeftovers(root, name, exe string) ([]string, error) {
	var removed []string
	for _, p := range Leftovers(root, name, exe) {
		if err := os.Remove(p); err != nil {
			return removed, err
		}
		removed = append(removed, p)
	}
	return removed, nil
}
