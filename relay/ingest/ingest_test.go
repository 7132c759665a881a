package ingest

import (
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTest(t *testing.T, lim Limits) (*Limiter, *clock) {
	t.Helper()
	if err := lim.CheckAndSetDefaults(time.Second); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return New(lim, c.now), c
}

func TestDefaults(t *testing.T) {
	var l Limits
	if err := l.CheckAndSetDefaults(0); err != nil {
		t.Fatal(err)
	}
	if l.HealthRowsPerHour != 960 || l.HealthReportsPerHour != 960 || l.HealthRowBurst != 20160 || l.InventoryPerHour != 30 {
		t.Fatalf("defaults at 15 s: %+v", l)
	}
	bad := Limits{HealthRowBurst: 10}
	if err := bad.CheckAndSetDefaults(0); err == nil {
		t.Fatal("a row burst below one report's samples was accepted")
	}
}

// A reconnecting agent sends its backlog in batches of 100 at once: all of
// it up to the row burst is accepted, the rest at the sustained rate.
func TestBacklogThenSustained(t *testing.T) {
	l, c := newTest(t, Limits{HealthRowBurst: 2000, HealthReportBurst: 50})
	for i := range 20 {
		if v := l.Health("d", 100); !v.OK {
			t.Fatalf("backlog batch %d refused: %+v", i, v)
		}
	}
	v := l.Health("d", 100)
	if v.OK || v.RetryAfter <= 0 || !v.Audit || v.Disconnect {
		t.Fatalf("batch over the burst: %+v", v)
	}
	c.t = c.t.Add(v.RetryAfter)
	if v := l.Health("d", 100); !v.OK {
		t.Fatalf("batch after RetryAfter refused: %+v", v)
	}
	// Steady state: one sample a second is well within 4× the rate.
	for range 600 {
		c.t = c.t.Add(time.Second)
		if v := l.Health("d", 1); !v.OK {
			t.Fatalf("steady sample refused: %+v", v)
		}
	}
	if v := l.Health("other", 100); !v.OK {
		t.Fatalf("another device is charged for this one: %+v", v)
	}
}

// A flooder is refused, audited once per window and disconnected after
// DisconnectAfter refusals in a row, then blocked for Penalty.
func TestFlooder(t *testing.T) {
	l, c := newTest(t, Limits{HealthRowBurst: 1000, HealthReportBurst: 10, DisconnectAfter: 5, Penalty: time.Minute})
	accepted, audits, disconnects := 0, 0, 0
	for range 100 {
		v := l.Health("f", 1000)
		if v.OK {
			accepted++
		}
		if v.Audit {
			audits++
		}
		if v.Disconnect {
			disconnects++
			if d, ok := l.Blocked("f"); !ok || d != time.Minute {
				t.Fatalf("disconnected device not blocked: %s %v", d, ok)
			}
		}
		c.t = c.t.Add(time.Millisecond)
	}
	if accepted != 1 || audits != 1 || disconnects != 19 {
		t.Fatalf("accepted %d, audits %d, disconnects %d", accepted, audits, disconnects)
	}
	c.t = c.t.Add(2 * time.Minute)
	if _, ok := l.Blocked("f"); ok {
		t.Fatal("still blocked after the penalty")
	}
	c.t = c.t.Add(10 * time.Minute)
	if v := l.Health("f", 1000); !v.OK {
		t.Fatalf("the refilled burst is refused: %+v", v)
	}
	if v := l.Health("f", 1000); v.OK || !v.Audit {
		t.Fatalf("a new window audits again: %+v", v)
	}
}

func TestInventory(t *testing.T) {
	l, c := newTest(t, Limits{InventoryPerHour: 6, InventoryBurst: 2})
	for i := range 2 { // the burst
		if !l.Inventory("d").OK {
			t.Fatalf("inventory %d of the burst refused", i+1)
		}
	}
	v := l.Inventory("d")
	if v.OK || v.RetryAfter != 10*time.Minute {
		t.Fatalf("third inventory: %+v", v)
	}
	c.t = c.t.Add(10 * time.Minute)
	if !l.Inventory("d").OK {
		t.Fatal("inventory after the refill refused")
	}
}

// Idle devices with full buckets are forgotten; a device that used its
// burst is not (forgetting it would refill its buckets).
func TestSweep(t *testing.T) {
	l, c := newTest(t, Limits{})
	l.Health("idle", 1)
	l.Health("busy", 20000)
	c.t = c.t.Add(time.Hour)
	l.Health("x", 0)
	l.mu.Lock()
	_, idle := l.devs["idle"]
	_, busy := l.devs["busy"]
	l.mu.Unlock()
	if idle || !busy {
		t.Fatalf("after sweep: idle kept %v, busy kept %v", idle, busy)
	}
}

// A flooder that slips an allowed report between refused ones is still
// disconnected: refusals count per window, not in a row.
func TestFlooderSlipsAllowedReports(t *testing.T) {
	l, c := newTest(t, Limits{HealthRowBurst: 1000, DisconnectAfter: 10})
	l.Health("f", 1000)
	for i := range 10 {
		c.t = c.t.Add(time.Second) // 4 rows refill a second
		if v := l.Health("f", 1); !v.OK {
			t.Fatalf("allowed report %d refused: %+v", i, v)
		}
		if v := l.Health("f", 1000); v.Disconnect {
			if i != 9 {
				t.Fatalf("disconnected after %d refusals, want 10", i+1)
			}
			return
		}
	}
	t.Fatal("never disconnected")
}

// TestRefusedRequests: bad requests (a refused certificate renewal) are
// charged like reports over a limit: one audit per window, then a
// disconnect and the reconnect penalty.
func TestRefusedRequests(t *testing.T) {
	l, _ := newTest(t, Limits{DisconnectAfter: 3})
	audits := 0
	for i := 1; i <= 3; i++ {
		v := l.Refused("d", "certificate renewal refused")
		if v.Audit {
			audits++
		}
		if v.Disconnect != (i == 3) {
			t.Fatalf("refusal %d: disconnect %v", i, v.Disconnect)
		}
	}
	if audits != 1 {
		t.Errorf("%d audit records for 3 refusals in one window, want 1", audits)
	}
	if _, blocked := l.Blocked("d"); !blocked {
		t.Error("device not blocked after the disconnect")
	}
}

// A report within its limits, the relay's most frequent call (one per
// agent every 15 s), allocates nothing; one over them still gets its wait
// and reason.
func TestHealthWithinLimitsAllocatesNothing(t *testing.T) {
	l, c := newTest(t, Limits{})
	l.Health("dev-1", 1) // the device's buckets
	allocs := testing.AllocsPerRun(100, func() {
		c.t = c.t.Add(4 * time.Second)
		if v := l.Health("dev-1", 1); !v.OK {
			t.Fatalf("a report every 4 s was refused: %+v", v)
		}
	})
	if allocs != 0 {
		t.Errorf("a report within the limits allocates %.1f times", allocs)
	}
	var v Verdict
	for range l.lim.HealthReportBurst + 1 {
		v = l.Health("dev-1", 1)
	}
	if v.OK || v.RetryAfter <= 0 || v.Reason == "" {
		t.Errorf("a report over the burst: %+v, want a refusal with its wait and reason", v)
	}
}
