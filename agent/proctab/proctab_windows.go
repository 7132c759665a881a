package proctab

import (
	"context"
	"fmt"
	"os"
	"time"
	"unsafe"

	"github.com/shirou/gopsutil/v3/process"
	"golang.org/x/sys/windows"
)

// List reads the process table: pids, parents and image names from one
// Toolhelp snapshot, then each process's start and CPU times
// (GetProcessTimes) and working set (gopsutil). Processes that cannot be
// opened (the idle and system processes, protected ones) or that exit
// while it reads are left out.
func List() ([]Proc, error) {
	return list(context.Background(), -1)
}

// ListUsage is List, stopping when ctx is done.
func ListUsage(ctx context.Context) ([]Proc, error) {
	return list(ctx, -1)
}

// Read reads process pid.
func Read(pid int) (Proc, error) {
	procs, err := list(context.Background(), pid)
	if err != nil {
		return Proc{}, err
	}
	if len(procs) == 0 {
		return Proc{}, fmt.Errorf("process %d: %w", pid, os.ErrProcessDone)
	}
	return procs[0], nil
}

// list reads every process, or only pid when it is not negative.
func list(ctx context.Context, pid int) ([]Proc, error) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	defer windows.CloseHandle(snap)
	var pe windows.ProcessEntry32
	pe.Size = uint32(unsafe.Sizeof(pe))
	var procs []Proc
	for err = windows.Process32First(snap, &pe); err == nil; err = windows.Process32Next(snap, &pe) {
		if pid >= 0 && int(pe.ProcessID) != pid {
			continue
		}
		if len(procs)%256 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p := Proc{PID: int(pe.ProcessID), PPID: int(pe.ParentProcessID), Name: windows.UTF16ToString(pe.ExeFile[:])}
		if !readTimes(&p) {
			continue
		}
		if m, err := (&process.Process{Pid: int32(p.PID)}).MemoryInfoWithContext(ctx); err == nil {
			p.RSS = m.RSS
		}
		procs = append(procs, p)
	}
	return procs, nil
}

// readTimes fills p's start and CPU times; false when the process cannot
// be opened.
func readTimes(p *Proc) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(p.PID))
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	var created, exited, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return false
	}
	p.Start = uint64(created.Nanoseconds() / int64(time.Millisecond))
	p.CPU = time.Duration(filetime100ns(kernel)+filetime100ns(user)) * 100
	return true
}

// filetime100ns is a FILETIME read as a duration in 100 ns units.
func filetime100ns(f windows.Filetime) int64 {
	return int64(f.HighDateTime)<<32 | int64(f.LowDateTime)
}

// Owner returns the account (DOMAIN\user) that process pid runs as.
func Owner(pid int) (string, error) {
	u, err := (&process.Process{Pid: int32(pid)}).Username()
	if err != nil {
		return "", fmt.Errorf("owner of process %d: %w", pid, err)
	}
	return u, nil
}
