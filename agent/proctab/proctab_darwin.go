package proctab

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// szomb is the zombie state of kinfo_proc.kp_proc.p_stat.
const szomb = 5

// List reads the process table through sysctl kern.proc.all. It leaves
// CPU and RSS zero: ListUsage reads them.
func List() ([]Proc, error) {
	kps, err := unix.SysctlKinfoProcSlice("kern.proc.all")
	if err != nil {
		return nil, err
	}
	procs := make([]Proc, 0, len(kps))
	for i := range kps {
		procs = append(procs, kinfoToProc(&kps[i]))
	}
	return procs, nil
}

// Read reads process pid through sysctl kern.proc.pid.
func Read(pid int) (Proc, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		return Proc{}, err
	}
	if int(kp.Proc.P_pid) != pid {
		return Proc{}, os.ErrProcessDone
	}
	return kinfoToProc(kp), nil
}

// Owner returns the user name of process pid's owner (its effective
// uid), or the uid in decimal when it has no name.
func Owner(pid int) (string, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		return "", fmt.Errorf("owner of process %d: %w", pid, err)
	}
	if int(kp.Proc.P_pid) != pid {
		return "", fmt.Errorf("owner of process %d: %w", pid, os.ErrProcessDone)
	}
	id := strconv.FormatUint(uint64(kp.Eproc.Ucred.Uid), 10)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return u.Username, nil
	}
	return id, nil
}

func kinfoToProc(kp *unix.KinfoProc) Proc {
	tv := kp.Proc.P_starttime
	return Proc{
		PID:    int(kp.Proc.P_pid),
		PPID:   int(kp.Eproc.Ppid),
		PGID:   int(kp.Eproc.Pgid),
		Start:  uint64(tv.Sec)*1_000_000 + uint64(tv.Usec),
		Zombie: kp.Proc.P_stat == szomb,
		Name:   unix.ByteSliceToString(kp.Proc.P_comm[:]),
	}
}

// Handle names a process by pid and start time, checked before each
// signal so that a recycled pid is never signalled.
type Handle struct {
	pid   int
	start uint64
}

// Open holds p. macOS has no pidfd: the start time is checked at each
// Signal instead, so Open itself does not fail.
func Open(p Proc) (*Handle, error) {
	return &Handle{pid: p.PID, start: p.Start}, nil
}

// Start is the start time of the process held.
func (h *Handle) Start() uint64 { return h.start }

// Signal sends s to the process; syscall.ESRCH means it is gone.
func (h *Handle) Signal(s syscall.Signal) error {
	if cur, err := Read(h.pid); err != nil || cur.Start != h.start {
		return syscall.ESRCH
	}
	return syscall.Kill(h.pid, s)
}

// Exited reports whether the process has exited; a zombie has.
func (h *Handle) Exited() bool {
	cur, err := Read(h.pid)
	return err != nil || cur.Start != h.start || cur.Zombie
}

// Release does nothing on macOS: a Handle holds no resource.
func (h *Handle) Release() {}
