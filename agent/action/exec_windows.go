package action

import (
	"os"
	"path/filepath"
)

func systemRoot() string {
	if s := os.Getenv("SystemRoot"); s != "" {
		return s
	}
	return `C:\Windows`
}

// toolDirs are the only directories tools are taken from.
func toolDirs() []string { return []string{filepath.Join(systemRoot(), "System32")} }

// toolEnv is the fixed environment of tools.
func toolEnv() []string {
	env := []string{"PATH=" + filepath.Join(systemRoot(), "System32") + ";" + systemRoot()}
	for _, k := range []string{"SystemRoot", "SystemDrive", "windir", "ComSpec", "PATHEXT", "TEMP", "TMP", "ProgramData"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
