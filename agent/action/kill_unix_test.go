//go:build linux || darwin

package action

import "testing"

func TestIsAncestor(t *testing.T) {
	procs := map[int]procInfo{
		1:  {pid: 1, ppid: 0},
		10: {pid: 10, ppid: 1},
		20: {pid: 20, ppid: 10},
		30: {pid: 30, ppid: 20},
		40: {pid: 40, ppid: 10},
	}
	tests := []struct {
		name      string
		self, pid int
		want      bool
	}{
		{"parent", 30, 20, true},
		{"grandparent", 30, 10, true},
		{"sibling branch", 30, 40, false},
		{"child", 20, 30, false},
		{"itself", 30, 30, false},
		{"unknown self", 99, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isAncestor(procs, tt.self, tt.pid); got != tt.want {
				t.Errorf("isAncestor(%d, %d) = %v", tt.self, tt.pid, got)
			}
		})
	}
	loop := map[int]procInfo{5: {pid: 5, ppid: 6}, 6: {pid: 6, ppid: 5}}
	if isAncestor(loop, 5, 7) {
		t.Error("loop: ancestor found")
	}
}
