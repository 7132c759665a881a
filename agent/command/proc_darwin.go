package command

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
		pgid:   int(kp.Eproc.Pgid),
		start:  uint64(tv.Sec)*1_000_000 + uint64(tv.Usec),
		zombie: kp.Proc.P_stat == szomb,
	}
}

// readProc reads one process through sysctl kern.proc.pid.
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

// pipeIdentity: macOS offers no portable way to list another process's
// open files without libproc, so pipe holders are not searched.
func pipeIdentity(*os.File) (string, bool) { return "", false }

func pipeHolders(map[int]procInfo, []string) []int { return nil }

// victim is a process outside the group; its start time is checked
// before each signal so that a recycled pid is never signalled.
type victim struct {
	pid   int
	start uint64
}

func openVictim(p procInfo) (*victim, error) {
	return &victim{pid: p.pid, start: p.start}, nil
}

func (v *victim) signal(s syscall.Signal) {
	if cur, err := readProc(v.pid); err == nil && cur.start == v.start {
		_ = syscall.Kill(v.pid, s)
	}
}

func (v *victim) exited() bool {
	cur, err := readProc(v.pid)
	return err != nil || cur.start != v.start || cur.zombie
}

func (v *victim) release() {}
