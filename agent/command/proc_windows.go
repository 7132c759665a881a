package command

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// scriptFileName names the script inside its private directory;
// PowerShell runs only files ending in .ps1.
const scriptFileName = "script.ps1"

// passEnv are the agent's variables a Windows program needs to work;
// nothing else of the agent's environment is passed.
var passEnv = []string{
	"ALLUSERSPROFILE", "APPDATA", "COMPUTERNAME", "ComSpec", "CommonProgramFiles",
	"CommonProgramFiles(x86)", "CommonProgramW6432", "LOCALAPPDATA", "NUMBER_OF_PROCESSORS",
	"OS", "PATHEXT", "PROCESSOR_ARCHITECTURE", "PROCESSOR_IDENTIFIER", "PSModulePath",
	"PUBLIC", "ProgramData", "ProgramFiles", "ProgramFiles(x86)", "ProgramW6432",
	"SystemDrive", "SystemRoot", "TEMP", "TMP", "USERDOMAIN", "USERNAME", "USERPROFILE", "windir",
}

// lookupAccount: Windows runs commands as the agent's account only.
func lookupAccount(name string) (*account, error) {
	if name != "" {
		return nil, fmt.Errorf("run_as: %w", ErrNotSupported)
	}
	a := &account{}
	if u, err := user.Current(); err == nil {
		a.name, a.home = u.Username, u.HomeDir
	}
	return a, nil
}

func systemRoot() string {
	if s := os.Getenv("SystemRoot"); s != "" {
		return s
	}
	return `C:\Windows`
}

// environ is the environment of a command: a fixed PATH and the system
// variables in passEnv.
func environ() []string {
	root := systemRoot()
	env := []string{"PATH=" + root + `\System32;` + root + `;` + root + `\System32\Wbem;` + root + `\System32\WindowsPowerShell\v1.0`}
	for _, k := range passEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// workDir is a's home when it is a directory, else the system drive's root.
func workDir(a *account) string {
	if a.home != "" {
		if fi, err := os.Stat(a.home); err == nil && fi.IsDir() {
			return a.home
		}
	}
	return filepath.VolumeName(systemRoot()) + `\`
}

// buildCmd returns the command for sp, created suspended so that
// startTree can put it in a job before it runs.
func buildCmd(sp *spec, scriptPath string) (*exec.Cmd, error) {
	root := systemRoot()
	attr := &syscall.SysProcAttr{
		HideWindow:    true,
		CreationFlags: windows.CREATE_SUSPENDED | windows.CREATE_NEW_PROCESS_GROUP | windows.CREATE_NO_WINDOW,
	}
	var args []string
	if scriptPath == "" {
		exe := filepath.Join(root, "System32", "cmd.exe")
		// /S /C "…": cmd.exe strips the outer quotes and runs the rest
		// as typed; /D skips the AutoRun registry commands.
		attr.CmdLine = `"` + exe + `" /D /S /C "` + sp.command + `"`
		args = []string{exe}
	} else {
		exe := filepath.Join(root, "System32", "WindowsPowerShell", "v1.0", "powershell.exe")
		args = []string{exe, "-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", scriptPath}
	}
	return &exec.Cmd{Path: args[0], Args: args, Env: environ(), Dir: workDir(sp.acct), SysProcAttr: attr}, nil
}

// tree is a started command and the Job object holding it and every
// process it starts.
type tree struct {
	cmd *exec.Cmd
	log *slog.Logger
	job windows.Handle // 0 when no job could be set up
}

// jobAccounting is JOBOBJECT_BASIC_ACCOUNTING_INFORMATION.
type jobAccounting struct {
	TotalUserTime             int64
	TotalKernelTime           int64
	ThisPeriodTotalUserTime   int64
	ThisPeriodTotalKernelTime int64
	TotalPageFaultCount       uint32
	TotalProcesses            uint32
	ActiveProcesses           uint32
	TotalTerminatedProcesses  uint32
}

// startTree starts cmd (suspended), puts it in a kill-on-close job and
// resumes it. Without a job the tree is ended with taskkill.
func startTree(cmd *exec.Cmd, log *slog.Logger, _ ...*os.File) (*tree, error) {
	job, jobErr := newJob()
	if err := cmd.Start(); err != nil {
		if job != 0 {
			windows.CloseHandle(job)
		}
		return nil, err
	}
	t := &tree{cmd: cmd, log: log}
	pid := uint32(cmd.Process.Pid)
	if jobErr == nil {
		jobErr = assign(job, pid)
		if jobErr == nil {
			t.job = job
		} else {
			windows.CloseHandle(job)
		}
	}
	if jobErr != nil {
		log.Warn("command: no job object; the tree will be ended with taskkill", logKeyPID, pid, logKeyErr, jobErr)
	}
	if err := resume(pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.close()
		return nil, fmt.Errorf("resuming process: %w", err)
	}
	return t, nil
}

func newJob() (windows.Handle, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return 0, err
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{
		BasicLimitInformation: windows.JOBOBJECT_BASIC_LIMIT_INFORMATION{
			LimitFlags: windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
		},
	}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return 0, err
	}
	return job, nil
}

func assign(job windows.Handle, pid uint32) error {
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, pid)
	if err != nil {
		return err
	}
	defer windows.CloseHandle(h)
	return windows.AssignProcessToJobObject(job, h)
}

// resume resumes the threads of a process created suspended.
func resume(pid uint32) error {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPTHREAD, 0)
	if err != nil {
		return err
	}
	defer windows.CloseHandle(snap)
	te := windows.ThreadEntry32{Size: uint32(unsafe.Sizeof(windows.ThreadEntry32{}))}
	resumed := 0
	for err = windows.Thread32First(snap, &te); err == nil; err = windows.Thread32Next(snap, &te) {
		if te.OwnerProcessID != pid {
			continue
		}
		th, err := windows.OpenThread(windows.THREAD_SUSPEND_RESUME, false, te.ThreadID)
		if err != nil {
			return err
		}
		_, err = windows.ResumeThread(th)
		windows.CloseHandle(th)
		if err != nil {
			return err
		}
		resumed++
	}
	if resumed == 0 {
		return errors.New("no thread found")
	}
	return nil
}

// wait reaps the leader and returns its exit code.
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

// active returns the number of live processes in the job.
func (t *tree) active() (uint32, error) {
	var info jobAccounting
	err := windows.QueryInformationJobObject(t.job, windows.JobObjectBasicAccountingInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)), nil)
	return info.ActiveProcesses, err
}

// leftovers reports whether the job still has processes after the leader
// exited.
func (t *tree) leftovers() bool {
	if t.job == 0 {
		return false
	}
	n, err := t.active()
	return err != nil || n > 0
}

// kill terminates the job at once (Windows has no SIGTERM for a console
// tree, so grace is not used), or runs taskkill /T /F without a job, and
// waits up to killWait for the processes to go.
func (t *tree) kill(time.Duration) {
	if t.job == 0 {
		if t.cmd.ProcessState != nil {
			return // the leader is gone; its tree cannot be found any more
		}
		taskkill := filepath.Join(systemRoot(), "System32", "taskkill.exe")
		if out, err := exec.Command(taskkill, "/T", "/F", "/PID", strconv.Itoa(t.cmd.Process.Pid)).CombinedOutput(); err != nil {
			t.log.Warn("command: taskkill", logKeyPID, t.cmd.Process.Pid, logKeyErr, err, "output", string(out))
		}
		return
	}
	if err := windows.TerminateJobObject(t.job, 1); err != nil {
		t.log.Warn("command: terminating job", logKeyErr, err)
	}
	deadline := time.Now().Add(killWait)
	for {
		n, err := t.active()
		if err != nil || n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.log.Warn("command: processes outlived job termination", logKeyCount, n)
			return
		}
		time.Sleep(pollEvery)
	}
}

// close closes the job, which kills anything still in it.
func (t *tree) close() {
	if t.job != 0 {
		windows.CloseHandle(t.job)
		t.job = 0
	}
}
