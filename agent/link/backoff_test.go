package link

import (
	"testing"
	"time"
)

func TestBackoffFollowsTheSpec(t *testing.T) {
	b := DefaultBackoff
	base := []float64{1, 1.6, 2.56, 4.096, 6.5536}
	for i, want := range base {
		for range 200 {
			d := b.Delay(i).Seconds()
			if d < want*0.8-1e-9 || d > want*1.2+1e-9 {
				t.Fatalf("attempt %d: %v outside %v ±20%%", i, d, want)
			}
		}
	}
	for range 200 {
		if d := b.Delay(100); d > 144*time.Second || d < 96*time.Second {
			t.Fatalf("capped delay %v outside 120s ±20%%", d)
		}
	}
}
