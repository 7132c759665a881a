package action

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// szomb is the zombie state of kinfo_proc.kp_proc.p_stat.
const szomb = 5

// listProcs reads the process table through sysctl kern.proc.all.
func listProcs() ([]procInfo, error) {
	kps, err := unix.SysctlKinfoProcSlice("kern.proc.all")
	if err != nil {
		return nil, err
	}
	procs := make([]procInfo, 0, len(kps))
	for i := range kps {
		procs = append(procs, kinfoToProc(&kps[i]))
	}
	return procs, nil
}

func kinfoToProc(kp *unix.KinfoProc) procInfo {
	tv := kp.Proc.P_starttime
	return procInfo{
		pid:    int(kp.Proc.P_pid),
		ppid:   int(kp.Eproc.Ppid),
		start:  uint64(tv.Sec)*1_000_000 + uint64(tv.Usec),
		zombie: kp.Proc.P_stat == szomb,
		name:   unix.ByteSliceToString(kp.Proc.P_comm[:]),
	}
}

func readProc(pid int) (procInfo, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		return procInfo{}, err
	}
	if int(kp.Proc.P_pid) != pid {
		return procInfo{}, os.ErrProcessDone
	}
	return kinfoToProc(kp), nil
}

// procHandle names a process by pid and start time, checked before each
// signal so that a recycled pid is never signalled.
type procHandle struct {
	pid   int
	start uint64
}

func openProc(p procInfo) (*procHandle, error) {
	return &procHandle{pid: p.pid, start: p.start}, nil
}

func (h *procHandle) signal(s syscall.Signal) error {
	if cur, err := readProc(h.pid); err != nil || cur.start != h.start {
		return syscall.ESRCH
	}
	return syscall.Kill(h.pid, s)
}

func (h *procHandle) exited() bool {
	cur, err := readProc(h.pid)
	return err != nil || cur.start != h.start || cur.zombie
}

func (h *procHandle) release() {}
