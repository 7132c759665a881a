package downloads

import "testing"

func TestServed(t *testing.T) {
	for name, want := range map[string]bool{
		"deskside-agent_1.2.3+4.gabc_amd64.deb":    true,
		"deskside-agent-1.2.3+4.gabc-1.x86_64.rpm": true,
		"deskside-agent.msi":                       true,
		"SHA256SUMS":                               true,
		"deskside-agent_1.2.3.spdx.json":           true,
		"deskside-relay_1.2.3.spdx.json":           true,
		"deskside-agent.release":                   true,
		"deskside-relay_1.2.3_amd64.deb":           false,
		"deskside-agent.exe":                       false,
		"deskside-agent":                           false,
		".spdx.json":                               false,
		".release":                                 false,
		".deskside-agent.msi":                      false,
		"-deskside-agent.msi":                      false,
		"../deskside-agent.msi":                    false,
		"deskside-agent..msi":                      false,
		"sub/deskside-agent.msi":                   false,
		`sub\deskside-agent.msi`:                   false,
		"deskside-agent .msi":                      false,
		"deskside-agent%2e.msi":                    false,
		"deskside-agent\x00.msi":                   false,
		"sha256sums":                               false,
		"":                                         false,
	} {
		if got := Served(name); got != want {
			t.Errorf("Served(%q) = %v, want %v", name, got, want)
		}
	}
}

func FuzzServed(f *testing.F) {
	for _, s := range []string{"deskside-agent.msi", "../x", "SHA256SUMS", "a.spdx.json"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !Served(name) {
			return
		}
		for _, r := range name {
			if r == '/' || r == '\\' || r == 0 || r == '%' {
				t.Fatalf("Served(%q): a path or escape", name)
			}
		}
		if name == "." || name == ".." || name[0] == '.' {
			t.Fatalf("Served(%q): a dot name", name)
		}
	})
}
