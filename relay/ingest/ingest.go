// Package ingest bounds what one device may send the relay: health reports
// and the sample rows in them, and inventory reports. Each device has token
// buckets (golang.org/x/time/rate) sized from Limits; a report over a limit
// is refused with a delay after which it would fit, the first refusal of a
// device in each Window is marked for one audit record, and a device
// refused DisconnectAfter times in a window is marked for disconnection and
// refused at reconnect for Penalty. After a refusal the caller stops
// reading the device's stream for Verdict.Pause, so a flooder's sends wait
// on flow control instead of costing the relay a decode each.
//
// The buckets belong to the device, not to its stream, so reconnecting does
// not refill them. A reconnecting agent legitimately sends its spooled
// backlog at once: the bursts allow a bounded backlog (HealthRowBurst rows)
// and the rest follows at the sustained rate.
package ingest

import (
	"cmp"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/deskside/deskside/proto/wire"
)

// DefaultHealthInterval is the sampling interval assumed when the relay
// does not push one to agents (the agents' own default).
const DefaultHealthInterval = 15 * time.Second

// slack is how many times the sampling rate a device may sustain: retries
// after a refusal, reports that carry only a drop count, a clock that runs
// fast.
const slack = 4

// Limits are the per-device ingest limits. Zero fields take the defaults
// CheckAndSetDefaults states.
type Limits struct {
	// HealthReportsPerHour is the sustained rate of health reports;
	// default 4 × 3600 / the health interval (960 at 15 s).
	HealthReportsPerHour int
	// HealthReportBurst is how many health reports may arrive at once
	// (a reconnecting agent sends its backlog in batches of 100); default 300.
	HealthReportBurst int
	// HealthRowsPerHour is the sustained rate of health samples stored;
	// default 4 × 3600 / the health interval (960 at 15 s).
	HealthRowsPerHour int
	// HealthRowBurst is the backlog of samples a device may send at once,
	// after reconnecting; default 20,160 (3.5 days of 15-second samples).
	// At least wire.MaxHealthBatch.
	HealthRowBurst int
	// InventoryPerHour is the sustained rate of inventory reports
	// (one at each connect, one when it changes, one per console
	// request); default 30.
	InventoryPerHour int
	// InventoryBurst is how many inventory reports may arrive at once;
	// default 10.
	InventoryBurst int
	// Window is the period of the refusal bookkeeping: at most one audit
	// record per device per window; default 10 minutes.
	Window time.Duration
	// DisconnectAfter is how many refusals within one Window end the
	// device's stream; default 50. An agent that waits as each refusal
	// says is refused about once per wait (a handful per window); one that
	// keeps sending, or slips an allowed report between refused ones, is
	// not.
	DisconnectAfter int
	// Penalty is how long a disconnected device is refused at reconnect;
	// default 1 minute.
	Penalty time.Duration
	// Pause is the longest the relay stops reading a device's stream after
	// refusing one of its reports (at most the refusal's RetryAfter):
	// a flooder's sends then wait on gRPC flow control instead of costing
	// the relay a decode each; default 1 second. An agent that waits as
	// told loses nothing; its replies to requests wait at most Pause.
	Pause time.Duration
}

// CheckAndSetDefaults fills defaults from healthInterval (0: the agents'
// default, DefaultHealthInterval) and names each bad field.
func (l *Limits) CheckAndSetDefaults(healthInterval time.Duration) error {
	iv := cmp.Or(healthInterval, DefaultHealthInterval)
	perHour := max(1, int(slack*time.Hour/iv))
	l.HealthReportsPerHour = cmp.Or(l.HealthReportsPerHour, perHour)
	l.HealthReportBurst = cmp.Or(l.HealthReportBurst, 300)
	l.HealthRowsPerHour = cmp.Or(l.HealthRowsPerHour, perHour)
	l.HealthRowBurst = cmp.Or(l.HealthRowBurst, 20160)
	l.InventoryPerHour = cmp.Or(l.InventoryPerHour, 30)
	l.InventoryBurst = cmp.Or(l.InventoryBurst, 10)
	l.Window = cmp.Or(l.Window, 10*time.Minute)
	l.DisconnectAfter = cmp.Or(l.DisconnectAfter, 50)
	l.Penalty = cmp.Or(l.Penalty, time.Minute)
	l.Pause = cmp.Or(l.Pause, time.Second)
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{
		{"HealthReportsPerHour", l.HealthReportsPerHour}, {"HealthReportBurst", l.HealthReportBurst},
		{"HealthRowsPerHour", l.HealthRowsPerHour}, {"InventoryPerHour", l.InventoryPerHour},
		{"InventoryBurst", l.InventoryBurst}, {"DisconnectAfter", l.DisconnectAfter},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("config: Ingest.%s is %d; it must be positive (0 takes the default)", f.name, f.v))
		}
	}
	if l.HealthRowBurst < wire.MaxHealthBatch {
		errs = append(errs, fmt.Errorf("config: Ingest.HealthRowBurst %d is below the %d samples one report may carry; raise it", l.HealthRowBurst, wire.MaxHealthBatch))
	}
	if l.Window < 0 || l.Penalty < 0 || l.Pause < 0 {
		errs = append(errs, errors.New("config: Ingest.Window, Ingest.Penalty and Ingest.Pause must be positive (0 takes the default)"))
	}
	return errors.Join(errs...)
}

// Kind is what a refused report was.
type Kind string

// The kinds of report the limiter counts.
const (
	Health    Kind = "health"
	Inventory Kind = "inventory"
)

// Verdict is the limiter's answer to one report.
type Verdict struct {
	// OK means the report is within the limits and was charged.
	OK bool
	// RetryAfter is, when refused, how long until the report would fit.
	RetryAfter time.Duration
	// Reason says which limit refused it, e.g. "health rows over 960/h
	// (burst 20160)".
	Reason string
	// Audit is set on the first refusal of the device in a window: the
	// caller writes one audit record.
	Audit bool
	// Disconnect is set when the device kept sending while refused: the
	// caller ends its stream (and Blocked refuses it for Penalty).
	Disconnect bool
	// Pause is how long the caller stops reading the device's stream.
	Pause time.Duration
	// Refused is the number of the device's refusals in this window (since
	// its last disconnection) so far.
	Refused int
}

// Limiter holds the per-device buckets. It is safe for concurrent use.
type Limiter struct {
	lim Limits
	now func() time.Time

	mu        sync.Mutex
	devs      map[string]*device
	lastSweep time.Time
}

type device struct {
	reports, rows, inv *rate.Limiter

	windowStart time.Time
	refused     int  // in this window, since the last disconnect
	audited     bool // in this window
	blocked     time.Time
}

// New returns a limiter for lim (after CheckAndSetDefaults); now is the clock.
func New(lim Limits, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{lim: lim, now: now, devs: make(map[string]*device)}
}

func perHour(n int) rate.Limit { return rate.Limit(float64(n) / 3600) }

func (l *Limiter) device(id string, now time.Time) *device {
	if now.Sub(l.lastSweep) > l.lim.Window {
		l.sweep(now)
	}
	d := l.devs[id]
	if d == nil {
		d = &device{
			reports: rate.NewLimiter(perHour(l.lim.HealthReportsPerHour), l.lim.HealthReportBurst),
			rows:    rate.NewLimiter(perHour(l.lim.HealthRowsPerHour), l.lim.HealthRowBurst),
			inv:     rate.NewLimiter(perHour(l.lim.InventoryPerHour), l.lim.InventoryBurst),
		}
		l.devs[id] = d
	}
	return d
}

// sweep forgets devices whose buckets are full again and that are not
// blocked: forgetting them changes nothing.
func (l *Limiter) sweep(now time.Time) {
	l.lastSweep = now
	for id, d := range l.devs {
		if now.After(d.blocked) && now.Sub(d.windowStart) >= l.lim.Window &&
			d.reports.TokensAt(now) >= float64(l.lim.HealthReportBurst) &&
			d.rows.TokensAt(now) >= float64(l.lim.HealthRowBurst) &&
			d.inv.TokensAt(now) >= float64(l.lim.InventoryBurst) {
			delete(l.devs, id)
		}
	}
}

// Health charges a health report of rows samples to device id.
func (l *Limiter) Health(id string, rows int) Verdict {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.device(id, now)
	rows = min(rows, l.lim.HealthRowBurst) // a longer list is refused as too large after this
	// The usual case, a report within both limits, takes its tokens
	// without a Reservation or a reason to allocate (TokensAt ≥ n is
	// exactly when ReserveN would not wait).
	if d.reports.TokensAt(now) >= 1 && (rows == 0 || d.rows.TokensAt(now) >= float64(rows)) {
		d.reports.AllowN(now, 1)
		if rows > 0 {
			d.rows.AllowN(now, rows)
		}
		return Verdict{OK: true}
	}
	rep := d.reports.ReserveN(now, 1)
	wait := rep.DelayFrom(now)
	reason := fmt.Sprintf("health reports over %d/h (burst %d)", l.lim.HealthReportsPerHour, l.lim.HealthReportBurst)
	var row *rate.Reservation
	if rows > 0 {
		row = d.rows.ReserveN(now, rows)
		if w := row.DelayFrom(now); w > wait {
			wait = w
			reason = fmt.Sprintf("health samples over %d/h (burst %d)", l.lim.HealthRowsPerHour, l.lim.HealthRowBurst)
		}
	}
	if wait == 0 {
		return Verdict{OK: true}
	}
	rep.CancelAt(now)
	if row != nil {
		row.CancelAt(now)
	}
	return l.refuse(d, now, wait, reason)
}

// Inventory charges an inventory report to device id.
func (l *Limiter) Inventory(id string) Verdict {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.device(id, now)
	r := d.inv.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	if wait == 0 {
		return Verdict{OK: true}
	}
	r.CancelAt(now)
	return l.refuse(d, now, wait, fmt.Sprintf("inventory reports over %d/h (burst %d)", l.lim.InventoryPerHour, l.lim.InventoryBurst))
}

func (l *Limiter) refuse(d *device, now time.Time, wait time.Duration, reason string) Verdict {
	if now.Sub(d.windowStart) >= l.lim.Window {
		d.windowStart, d.refused, d.audited = now, 0, false
	}
	d.refused++
	v := Verdict{RetryAfter: wait, Pause: min(wait, l.lim.Pause), Reason: reason, Refused: d.refused}
	if !d.audited {
		d.audited, v.Audit = true, true
	}
	if d.refused >= l.lim.DisconnectAfter {
		d.refused = 0
		d.blocked = now.Add(l.lim.Penalty)
		v.Disconnect = true
	}
	return v
}

// Refused charges a request of device id that the relay refused for what
// it held (a bad certificate renewal, say) as a refusal: the same window,
// one audit per window and the same disconnect as reports over their
// limits, so a device cannot grow the audit log by sending bad requests.
func (l *Limiter) Refused(id, reason string) Verdict {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refuse(l.device(id, now), now, 0, reason)
}

// Blocked reports whether device id was disconnected for flooding less
// than Penalty ago, and for how much longer it is refused.
func (l *Limiter) Blocked(id string) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.devs[id]
	if d == nil || !now.Before(d.blocked) {
		return 0, false
	}
	return d.blocked.Sub(now), true
}
