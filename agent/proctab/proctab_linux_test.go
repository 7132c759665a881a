package proctab

import (
	"testing"
	"time"
)

// ticks is n clock ticks as a duration.
func ticks(n float64) time.Duration { return time.Duration(n / clockTicks() * float64(time.Second)) }

func TestClockTicks(t *testing.T) {
	if c := clockTicks(); c <= 0 || c > 10000 {
		t.Errorf("clock ticks %v", c)
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name, in string
		want     Proc
		ok       bool
	}{
		{
			"plain",
			"1234 (bash) S 1 1234 1234 34816 1234 4194304 1000 0 0 0 150 50 0 0 20 0 1 0 98765 10000000 812 18446744073709551615\n",
			Proc{PID: 1234, PPID: 1, PGID: 1234, Start: 98765, Name: "bash", CPU: ticks(200), RSS: 812 * pageSize}, true,
		},
		{
			"comm with spaces and parens",
			"77 (my (weird) prog) Z 5 70 70 0 -1 4194560 1 0 0 0 7 3 0 0 20 0 4 0 555 1 9 0\n",
			Proc{PID: 77, PPID: 5, PGID: 70, Start: 555, Zombie: true, Name: "my (weird) prog", CPU: ticks(10), RSS: 9 * pageSize}, true,
		},
		{
			"dead",
			"78 (x) X 5 70 70 0 -1 4194560 1 0 0 0 7 3 0 0 20 0 4 0 556 1 9 0\n",
			Proc{PID: 78, PPID: 5, PGID: 70, Start: 556, Zombie: true, Name: "x", CPU: ticks(10), RSS: 9 * pageSize}, true,
		},
		{"truncated", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 5 5", Proc{}, false},
		{"no parens", "1 x S 1", Proc{}, false},
		{"no pid", "(x) S 1 1 1 0 -1 0 0 0 0 0 5 5 0 0 20 0 1 0 9 1 1 0", Proc{}, false},
		{"bad start", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 5 5 0 0 20 0 1 0 soon 1 1 0", Proc{}, false},
		{"empty", "", Proc{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseStat([]byte(tt.in))
			if ok != tt.ok || got != tt.want {
				t.Errorf("got %+v %v, want %+v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
