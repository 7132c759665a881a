package usersession

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Session is a user's graphical session.
type Session struct {
	// ID is logind's session id, or "ipc:PID" for a registered session.
	ID   string
	User string
	UID  uint32
	GID  uint32
	// Groups are the user's supplementary groups.
	Groups     []uint32
	Home       string
	Display    string
	XAuthority string
	// Seat is "seat0" for the console.
	Seat string
	// Locked is true when logind says the screen is locked.
	Locked bool
	// Notes are what the console should know (several sessions, a locked
	// screen); they do not stop the session.
	Notes []string
}

// Finder finds the graphical session to serve.
type Finder struct {
	// SessionsDir holds logind's session records (default
	// /run/systemd/sessions).
	SessionsDir string
	// Proc is the proc file system (default /proc), read for the session's
	// XAUTHORITY and DISPLAY when logind does not record them.
	Proc string
	// Loginctl runs loginctl for the screen's lock state (default the
	// loginctl on $PATH; nil or missing: not checked).
	Loginctl string

	mu         sync.Mutex
	registered map[int32]Session // by the registering process's pid
}

// Register adds a session a process of the user announced over the IPC
// socket (pid is that process); Unregister drops it when the connection
// ends.
func (f *Finder) Register(pid int32, uid uint32, display, xauthority string) error {
	s, err := userSession(uid)
	if err != nil {
		return err
	}
	s.ID, s.Display, s.XAuthority = "ipc:"+strconv.Itoa(int(pid)), display, xauthority
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.registered == nil {
		f.registered = map[int32]Session{}
	}
	f.registered[pid] = s
	return nil
}

// Unregister drops the session pid registered.
func (f *Finder) Unregister(pid int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.registered, pid)
}

// record is one logind session record.
type record map[string]string

// Find returns the session to serve: the active graphical session on
// seat0 in logind's records, else another graphical one, else a session
// registered over IPC. ErrNoSession when there is none.
func (f *Finder) Find(ctx context.Context) (Session, error) {
	recs, err := f.records()
	if err != nil {
		return Session{}, err
	}
	var graphical []record
	wayland := ""
	for _, r := range recs {
		if r["CLASS"] != "" && r["CLASS"] != "user" {
			continue // greeter, lock screen, background
		}
		if st := r["STATE"]; st == "closing" {
			continue
		}
		switch r["TYPE"] {
		case "x11":
			graphical = append(graphical, r)
		case "wayland":
			wayland = r["USER"]
		}
	}
	if len(graphical) == 0 {
		f.mu.Lock()
		var reg []Session
		for _, s := range f.registered {
			reg = append(reg, s)
		}
		f.mu.Unlock()
		if len(reg) > 0 {
			slices.SortFunc(reg, func(a, b Session) int { return strings.Compare(a.ID, b.ID) })
			s := reg[len(reg)-1] // the latest registration
			if len(reg) > 1 {
				s.Notes = append(s.Notes, fmt.Sprintf("%d sessions registered through the tray; serving %s's, the latest", len(reg), s.User))
			}
			return s, nil
		}
		if wayland != "" {
			return Session{}, fmt.Errorf("%s is logged in to a Wayland session, which the agent cannot capture yet; log in to an X11 (Xorg) session", wayland)
		}
		return Session{}, ErrNoSession
	}
	// The active session on seat0 is the one at the console.
	slices.SortStableFunc(graphical, func(a, b record) int {
		return cmp.Compare(rank(b), rank(a))
	})
	r := graphical[0]
	uid, err := strconv.ParseUint(r["UID"], 10, 32)
	if err != nil {
		return Session{}, fmt.Errorf("logind session %s: bad UID %q", r["ID"], r["UID"])
	}
	s, err := userSession(uint32(uid))
	if err != nil {
		return Session{}, err
	}
	s.ID, s.Seat, s.Display = r["ID"], r["SEAT"], r["DISPLAY"]
	if len(graphical) > 1 {
		var users []string
		for _, g := range graphical {
			users = append(users, g["USER"])
		}
		s.Notes = append(s.Notes, fmt.Sprintf("%d users have graphical sessions (%s); serving %s's, the active one at the console (seat0)", len(graphical), strings.Join(users, ", "), s.User))
	}
	disp, xauth := f.environment(s.UID, s.Display)
	s.Display = cmp.Or(s.Display, disp)
	s.XAuthority = xauth
	if s.XAuthority == "" {
		if p := filepath.Join(s.Home, ".Xauthority"); s.Home != "" && fileExists(p) {
			s.XAuthority = p
		}
	}
	if s.Display == "" {
		return Session{}, fmt.Errorf("%s's graphical session %s has no X display the agent can find", s.User, s.ID)
	}
	if f.locked(ctx, s.ID) {
		s.Locked = true
		s.Notes = append(s.Notes, "the screen is locked")
	}
	return s, nil
}

// Alive reports whether s is still there: its logind record, not
// closing, or its registration.
func (f *Finder) Alive(s Session) bool {
	if pid, ok := strings.CutPrefix(s.ID, "ipc:"); ok {
		n, _ := strconv.Atoi(pid)
		f.mu.Lock()
		defer f.mu.Unlock()
		_, ok := f.registered[int32(n)]
		return ok
	}
	recs, err := f.records()
	if err != nil {
		return true // cannot tell
	}
	for _, r := range recs {
		if r["ID"] == s.ID {
			return r["STATE"] != "closing"
		}
	}
	return false
}

// rank orders sessions: the active one on seat0 first.
func rank(r record) int {
	n := 0
	if r["ACTIVE"] == "1" {
		n += 2
	}
	if r["SEAT"] == "seat0" {
		n++
	}
	return n
}

// records reads logind's session records; none when there is no logind.
func (f *Finder) records() ([]record, error) {
	dir := cmp.Or(f.SessionsDir, "/run/systemd/sessions")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read logind's sessions: %w", err)
	}
	var out []record
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.Contains(e.Name(), ".") {
			continue // the .ref FIFOs
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // a session that just ended
		}
		r := record{"ID": e.Name()}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), "=")
			if ok && !strings.HasPrefix(k, "#") {
				r[k] = v
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// environment finds the DISPLAY (when display is "") and XAUTHORITY of
// uid's session in its processes' environments.
func (f *Finder) environment(uid uint32, display string) (string, string) {
	proc := cmp.Or(f.Proc, "/proc")
	ents, err := os.ReadDir(proc)
	if err != nil {
		return "", ""
	}
	var foundDisplay string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if owner, ok := procUID(filepath.Join(proc, e.Name(), "status")); !ok || owner != uid {
			continue
		}
		env, err := os.ReadFile(filepath.Join(proc, e.Name(), "environ"))
		if err != nil {
			continue
		}
		var d, x string
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("DISPLAY=")); ok {
				d = string(v)
			} else if v, ok := bytes.CutPrefix(kv, []byte("XAUTHORITY=")); ok {
				x = string(v)
			}
		}
		if d == "" || (display != "" && d != display) {
			continue
		}
		if x != "" {
			return d, x
		}
		foundDisplay = cmp.Or(foundDisplay, d)
	}
	return foundDisplay, ""
}

// procUID reads the real uid from a /proc/PID/status file.
func procUID(path string) (uint32, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			fs := strings.Fields(v)
			if len(fs) == 0 {
				return 0, false
			}
			n, err := strconv.ParseUint(fs[0], 10, 32)
			return uint32(n), err == nil
		}
	}
	return 0, false
}

// locked asks logind whether session id's screen is locked (LockedHint);
// false when it cannot tell.
func (f *Finder) locked(ctx context.Context, id string) bool {
	bin := f.Loginctl
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("loginctl"); err != nil {
			return false
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "show-session", id, "-p", "LockedHint", "--value").Output()
	return err == nil && strings.TrimSpace(string(out)) == "yes"
}

// userSession fills in uid's account.
func userSession(uid uint32) (Session, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return Session{}, fmt.Errorf("the console user (uid %d) has no account entry: %w", uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return Session{}, fmt.Errorf("user %s: bad gid %q", u.Username, u.Gid)
	}
	s := Session{User: u.Username, UID: uid, GID: uint32(gid), Home: u.HomeDir}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				s.Groups = append(s.Groups, uint32(n))
			}
		}
	}
	return s, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
