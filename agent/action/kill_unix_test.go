//go:build linux || darwin

package action

import (
	"testing"

	"github.com/deskside/deskside/agent/proctab"
)

func TestIsAncestor(t *testing.T) {
	procs := map[int]proctab.Proc{
		1:  {PID: 1, PPID: 0},
		10: {PID: 10, PPID: 1},
		20: {PID: 20, PPID: 10},
		30: {PID: 30, PPID: 20},
		40: {PID: 40, PPID: 10},
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
	loop := map[int]proctab.Proc{5: {PID: 5, PPID: 6}, 6: {PID: 6, PPID: 5}}
	if isAncestor(loop, 5, 7) {
		t.Error("loop: ancestor found")
	}
}
