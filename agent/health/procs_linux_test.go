package health

import (
	"testing"

	"github.com/deskside/deskside/agent/proctab"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name, in string
		want     procStat
		ok       bool
	}{
		{
			"plain",
			"1234 (bash) S 1 1234 1234 34816 1234 4194304 1000 0 0 0 150 50 0 0 20 0 1 0 98765 10000000 812 18446744073709551615 1 1 0 0 0 0 65536 3670020 1266777851 0 0 0 17 1 0 0 0 0 0\n",
			procStat{comm: "bash", utime: 150, stime: 50, start: 98765, rssPages: 812}, true,
		},
		{
			"comm with spaces and parens",
			"77 (my (weird) prog) R 1 77 77 0 -1 4194560 1 0 0 0 7 3 0 0 20 0 4 0 555 1 9 0\n",
			procStat{comm: "my (weird) prog", utime: 7, stime: 3, start: 555, rssPages: 9}, true,
		},
		{"truncated", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 5 5", procStat{}, false},
		{"no parens", "1 x S 1", procStat{}, false},
		{"empty", "", procStat{}, false},
		{"close before open", "1 )x( S", procStat{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseProcStat([]byte(tt.in))
			if ok != tt.ok || got != tt.want {
				t.Errorf("got %+v %v, want %+v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestClockTicks(t *testing.T) {
	if c := proctab.ClockTicks(); c <= 0 || c > 10000 {
		t.Errorf("clock ticks %v", c)
	}
}
