//go:build linux || darwin

package command

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/deskside/deskside/agent/proctab"
)

const (
	// shellPath runs command lines.
	shellPath = "/bin/sh"
	// defaultPath is the PATH commands get.
	defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// scriptFileName names the script inside its private directory.
	scriptFileName = "script"
)

// geteuid is the agent's effective uid; tests replace it.
var geteuid = os.Geteuid

// lookupAccount resolves run_as; "" is the agent's own account.
func lookupAccount(name string) (*account, error) {
	if name == "" {
		a := &account{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}
		if u, err := user.Current(); err == nil {
			a.name, a.home = u.Username, u.HomeDir
		}
		return a, nil
	}
	u, err := user.Lookup(name)
	if err != nil && isDigits(name) {
		u, err = user.LookupId(name)
	}
	if err != nil {
		var unknownName user.UnknownUserError
		var unknownID user.UnknownUserIdError
		if errors.As(err, &unknownName) || errors.As(err, &unknownID) {
			return nil, fmt.Errorf("%w %q", ErrUnknownUser, name)
		}
		return nil, fmt.Errorf("command: looking up user %q: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("command: user %q: %w", name, err)
	}
	a := &account{name: u.Username, home: u.HomeDir, uid: uint32(uid), gid: uint32(gid)}
	if int(a.uid) == geteuid() {
		return a, nil // the agent's own user: nothing to switch
	}
	if geteuid() != 0 {
		return nil, ErrNeedRoot
	}
	a.switchTo = true
	a.groups = []uint32{a.gid}
	if ids, err := u.GroupIds(); err == nil {
		a.groups = a.groups[:0]
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				a.groups = append(a.groups, uint32(g))
			}
		}
	}
	return a, nil
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// environ is the fixed environment of a command.
func environ(a *account) []string {
	env := []string{
		"PATH=" + defaultPath,
		"HOME=" + workDir(a),
		"SHELL=/bin/sh",
		"LANG=C.UTF-8",
		"TERM=dumb",
	}
	if a.name != "" {
		env = append(env, "USER="+a.name, "LOGNAME="+a.name)
	}
	return env
}

// workDir is a's home when it is a directory, else /.
func workDir(a *account) string {
	if a.home != "" {
		if fi, err := os.Stat(a.home); err == nil && fi.IsDir() {
			return a.home
		}
	}
	return "/"
}

// buildCmd returns the command for sp; scriptPath is the written script,
// if sp is one.
func buildCmd(sp *spec, scriptPath string) (*exec.Cmd, error) {
	argv := []string{shellPath, "-c", sp.command}
	if scriptPath != "" {
		interp, arg, err := parseShebang(sp.script)
		if err != nil {
			return nil, err
		}
		argv = []string{interp}
		if arg != "" {
			argv = append(argv, arg)
		}
		argv = append(argv, scriptPath)
	}
	// No Pdeathsig: it fires when the forking OS thread exits, which Go
	// does whenever a goroutine ends while locked to its thread.
	attr := &syscall.SysProcAttr{Setpgid: true}
	if sp.acct.switchTo {
		attr.Credential = &syscall.Credential{Uid: sp.acct.uid, Gid: sp.acct.gid, Groups: sp.acct.groups}
	}
	return &exec.Cmd{
		Path:        argv[0],
		Args:        argv,
		Env:         environ(sp.acct),
		Dir:         workDir(sp.acct),
		SysProcAttr: attr,
	}, nil
}

// tree is a started command: its process group, led by the command, and
// the processes outside the group found to belong to it.
type tree struct {
	cmd   *exec.Cmd
	pgid  int
	self  int
	log   *slog.Logger
	pipes []string // the output pipes as /proc/*/fd links name them
	// extra are the processes outside the group, by pid, each held so
	// that a recycled pid is never signalled. Only the controller
	// goroutine touches it.
	extra map[int]*proctab.Handle
}

// startTree starts cmd as the leader of a new process group. outputs are
// the read ends of its output pipes, used to find processes holding them.
func startTree(cmd *exec.Cmd, log *slog.Logger, outputs ...*os.File) (*tree, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t := &tree{cmd: cmd, pgid: cmd.Process.Pid, self: os.Getpid(), log: log, extra: map[int]*proctab.Handle{}}
	for _, f := range outputs {
		if id, ok := pipeIdentity(f); ok {
			t.pipes = append(t.pipes, id)
		}
	}
	return t, nil
}

// wait reaps the leader and returns its exit code, -1 when a signal ended
// it. An exit status is not an error.
func (t *tree) wait() (int, error) {
	err := t.cmd.Wait()
	if _, ok := errors.AsType[*exec.ExitError](err); ok {
		err = nil
	}
	if t.cmd.ProcessState == nil {
		return -1, err
	}
	return t.cmd.ProcessState.ExitCode(), err
}

// leftovers reports whether the process group still has members, after
// the leader exited.
func (t *tree) leftovers() bool {
	return groupAlive(t.pgid)
}

// kill ends the tree: SIGTERM and SIGCONT, then SIGKILL after grace.
// It returns once everything is gone, or killWait after SIGKILL.
func (t *tree) kill(grace time.Duration) {
	t.signal(syscall.SIGTERM, syscall.SIGCONT)
	if t.waitGone(grace) {
		return
	}
	t.log.Debug("command: tree outlived SIGTERM; sending SIGKILL", logKeyPID, t.pgid)
	t.signal(syscall.SIGKILL)
	if !t.waitGone(killWait) {
		t.log.Warn("command: processes outlived SIGKILL", logKeyPID, t.pgid)
	}
}

// signal collects the tree and sends it sigs.
func (t *tree) signal(sigs ...syscall.Signal) {
	t.collect()
	for _, s := range sigs {
		if err := syscall.Kill(-t.pgid, s); err != nil && err != syscall.ESRCH {
			t.log.Warn("command: signalling process group", logKeyPID, t.pgid, logKeyErr, err)
		}
		for _, h := range t.extra {
			_ = h.Signal(s) // ESRCH: gone already
		}
	}
}

// collect adds to t.extra the processes outside the group that belong to
// the tree: descendants of the leader and of group members, and holders
// of the output pipes with their descendants.
func (t *tree) collect() {
	procs, err := proctab.List()
	if err != nil {
		t.log.Warn("command: listing processes", logKeyErr, err)
		return
	}
	byPID := make(map[int]proctab.Proc, len(procs))
	children := make(map[int][]int)
	roots := []int{t.pgid}
	for _, p := range procs {
		if p.Zombie || p.PID == t.self {
			continue
		}
		byPID[p.PID] = p
		children[p.PPID] = append(children[p.PPID], p.PID)
		if p.PGID == t.pgid {
			roots = append(roots, p.PID)
		}
	}
	for _, pid := range pipeHolders(byPID, t.pipes) {
		// The agent's own children are never this command's leftovers
		// (its leader is in the group): one holding the pipe is another
		// command, or a helper, that the agent forked while this
		// command's pipes were open, caught before its exec closed its
		// copies of them.
		if byPID[pid].PPID != t.self {
			roots = append(roots, pid)
		}
	}
	seen := make(map[int]bool)
	for len(roots) > 0 {
		pid := roots[len(roots)-1]
		roots = roots[:len(roots)-1]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		roots = append(roots, children[pid]...)
	}
	added := 0
	for pid := range seen {
		p, ok := byPID[pid]
		if !ok || p.PGID == t.pgid || pid <= 1 {
			continue // gone, or reached through kill(-pgid)
		}
		if h, ok := t.extra[pid]; ok && h.Start() == p.Start {
			continue
		}
		h, err := proctab.Open(p)
		if err != nil {
			continue // gone meanwhile
		}
		if old := t.extra[pid]; old != nil {
			old.Release()
		}
		t.extra[pid] = h
		added++
	}
	if added > 0 {
		t.log.Debug("command: processes outside the group belong to the tree", logKeyPID, t.pgid, logKeyCount, added)
	}
}

// waitGone polls until the tree is gone or d has passed.
func (t *tree) waitGone(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for t.alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
	return true
}

// alive reports whether any process of the tree still runs. Zombies do
// not count.
func (t *tree) alive() bool {
	for _, h := range t.extra {
		if !h.Exited() {
			return true
		}
	}
	return groupAlive(t.pgid)
}

// groupAlive reports whether process group pgid has a member that is not a
// zombie.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); err == syscall.ESRCH {
		return false
	}
	procs, err := proctab.List()
	if err != nil {
		return true
	}
	for _, p := range procs {
		if p.PGID == pgid && !p.Zombie {
			return true
		}
	}
	return false
}

// close releases the handles on extra processes.
func (t *tree) close() {
	for pid, h := range t.extra {
		h.Release()
		delete(t.extra, pid)
	}
}
