package reports

import (
	"strings"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	ds := []time.Duration{40, 10, 30, 20}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 20}, {0.9, 40}, {0.25, 10}, {1, 40}} {
		if got := Percentile(ds, c.p); got != c.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", ds, c.p, got, c.want)
		}
	}
	if Percentile(nil, 0.5) != 0 {
		t.Error("Percentile of nothing is not 0")
	}
}

func TestCSVDefusesFormulas(t *testing.T) {
	r := Report{Categories: []Category{{Name: "=HYPERLINK(\"x\")", Opened: 1}}}
	b, err := CSV(r, "categories")
	if err != nil {
		t.Fatal(err)
	}
	if want := "category,opened,resolved\n\"'=HYPERLINK(\"\"x\"\")\",1,0\n"; string(b) != want {
		t.Errorf("CSV = %q, want %q", b, want)
	}
	if _, err := CSV(r, "nope"); err == nil || !strings.Contains(err.Error(), "technicians") {
		t.Errorf("unknown section: %v; want an error naming the sections", err)
	}
}
