package fleetsim

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// EventResult is how the fleet went through one event: how many agents
// dropped and how long until half, 99 % and all of them were back.
type EventResult struct {
	Event  string `json:"event"`
	Offset string `json:"offset"` // after the fleet was up
	// Before is the agents connected just before; Min the fewest during
	// the event; Dropped the difference.
	Before  int64 `json:"before"`
	Min     int64 `json:"min"`
	Dropped int64 `json:"dropped"`
	// To50, To99 and To100 are the times from the event until that share
	// of the dropped agents was connected again ("" when never within the
	// window).
	To50  string `json:"to_50,omitempty"`
	To99  string `json:"to_99,omitempty"`
	To100 string `json:"to_100,omitempty"`
	// AllBack is whether every agent connected before was connected at
	// the end of the event's window.
	AllBack          bool     `json:"all_back"`
	Reconnects       int64    `json:"reconnects"`
	FailedHandshakes int64    `json:"failed_handshakes"`
	Problems         []string `json:"problems,omitempty"`

	at             time.Time
	connectsBefore int64
	hsBefore       int64
}

// evaluate fills in res from the connected series between res.at and
// until; target is the count that means "all back".
func (r *run) evaluate(res EventResult, until time.Time, target int64) EventResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.fleetUp.IsZero() && res.Event != "start" {
		res.Offset = res.at.Sub(r.fleetUp).Round(100 * time.Millisecond).String()
	}
	var pts []point
	for _, p := range r.series {
		if !p.t.Before(res.at) && !p.t.After(until) {
			pts = append(pts, p)
		}
	}
	res.Min = res.Before
	minAt := 0
	for i, p := range pts {
		if p.connected < res.Min {
			res.Min, minAt = p.connected, i
		}
	}
	res.Dropped = res.Before - res.Min
	if res.Event == "start" {
		res.Min, res.Dropped = 0, target
	}
	var last int64
	if len(pts) > 0 {
		last = pts[len(pts)-1].connected
	}
	res.AllBack = last >= target
	t := r.totalLocked()
	res.Reconnects = t.Connects - res.connectsBefore
	if res.Event == "start" {
		res.Reconnects = t.Connects - target
		if res.Reconnects < 0 {
			res.Reconnects = 0
		}
	}
	res.FailedHandshakes = t.FailedHandshakes - res.hsBefore
	if res.Dropped <= 0 {
		return res
	}
	for _, q := range []struct {
		share float64
		out   *string
	}{{0.5, &res.To50}, {0.99, &res.To99}, {1, &res.To100}} {
		need := res.Min + int64(float64(res.Dropped)*q.share+0.999999)
		need = min(need, target)
		for _, p := range pts[minAt:] {
			if p.connected >= need {
				*q.out = p.t.Sub(res.at).Round(10 * time.Millisecond).String()
				break
			}
		}
	}
	return res
}

func (e EventResult) line() string {
	if e.Dropped <= 0 {
		return fmt.Sprintf("%s: no agent dropped (%d connected); reconnects %d, failed handshakes %d", e.Event, e.Before, e.Reconnects, e.FailedHandshakes)
	}
	if e.Event == "start" {
		return fmt.Sprintf("start: %d agents to connect; connected: 50%% after %s, 99%% after %s, 100%% after %s (from the simulator's start, enrollment included)",
			e.Dropped, dash(e.To50), dash(e.To99), dash(e.To100))
	}
	back := "all back"
	if !e.AllBack {
		back = "NOT all back within its window"
	}
	return fmt.Sprintf("%s: %d agents dropped (fewest connected %d); back: 50%% %s, 99%% %s, 100%% %s; %s; reconnects %d, failed handshakes %d",
		e.Event, e.Dropped, e.Min, dash(e.To50), dash(e.To99), dash(e.To100), back, e.Reconnects, e.FailedHandshakes)
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// RelayUse is what a relay the simulator started used.
type RelayUse struct {
	Name    string `json:"name"`
	PeakRSS uint64 `json:"peak_rss_bytes"`
	// CPUSeconds is the CPU time it used during the run (all its
	// processes' lives), and AvgCores that over the time it ran.
	CPUSeconds float64 `json:"cpu_seconds"`
	AvgCores   float64 `json:"avg_cores"`
	PeakCores  float64 `json:"peak_cores"` // over one-second windows
	// SteadyCores is its CPU use from the fleet being up until the first
	// event (or the end), SteadyFor how long that was.
	SteadyCores float64 `json:"steady_cores"`
	SteadyFor   string  `json:"steady_for,omitempty"`
}

// Summary is a run's outcome.
type Summary struct {
	Agents           int    `json:"agents"`
	Workers          int    `json:"workers"`
	SourceAddrs      int    `json:"source_addresses"`
	HealthInterval   string `json:"health_interval"`
	Enrolled         int64  `json:"enrolled"`
	EnrollFailed     int64  `json:"enroll_failed"`
	ConnectedAtEnd   int64  `json:"connected_at_end"`
	Connects         int64  `json:"connects"`
	Reconnects       int64  `json:"reconnects"`
	DialFailures     int64  `json:"dial_failures"`
	FailedHandshakes int64  `json:"failed_handshakes"`
	SamplesSent      uint64 `json:"samples_taken"`
	SamplesAcked     uint64 `json:"samples_acked"`
	Requests         int64  `json:"requests_received"`
	Answered         int64  `json:"requests_answered"`
	// RefusedByAgents are requests the agents' own guard refused (no
	// envelope, a bad signature, a replayed nonce).
	RefusedByAgents int64  `json:"requests_refused_by_agents"`
	InvChanges      int64  `json:"inventory_changes"`
	SettleProblem   string `json:"settle_problem,omitempty"`

	// BlackholeIn is where blackhole events cut the network ("" without
	// any): "kernel (nftables)" or "agents (simulated…)".
	BlackholeIn string `json:"blackhole_in,omitempty"`

	Events  []EventResult  `json:"events"`
	Rounds  []RequestRound `json:"console_requests"`
	FanOuts []FanOut       `json:"fan_outs,omitempty"`
	// Signed says whether the agents pinned an organisation key and
	// commands went signed.
	Signed       bool       `json:"signed"`
	Relays       []RelayUse `json:"relays,omitempty"`
	EnrollErrors []string   `json:"enroll_errors,omitempty"`
	// AgentReports holds every agent's last acknowledged sample, to check
	// the relay's store against.
	AgentReports []AgentReport `json:"agent_reports"`
}

func (r *run) summary() *Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.totalLocked()
	s := &Summary{BlackholeIn: r.holeIn, Agents: r.cfg.Agents, Workers: len(r.workers), SourceAddrs: r.cfg.SourceAddrs, HealthInterval: r.cfg.HealthInterval.String(),
		Enrolled: t.Enrolled, EnrollFailed: t.EnrollFailed, Connects: t.Connects, Reconnects: max(t.Connects-t.Enrolled, 0),
		DialFailures: t.DialFailures, FailedHandshakes: t.FailedHandshakes, SamplesSent: t.Samples, Requests: t.Requests,
		Answered: t.Answered, RefusedByAgents: t.Refused, InvChanges: t.InvChanges, Events: r.events, Rounds: r.rounds, FanOuts: r.fanOuts, Signed: r.orgPin != "", EnrollErrors: r.errors,
		SettleProblem: r.settleMiss}
	if len(r.series) > 0 {
		s.ConnectedAtEnd = r.series[len(r.series)-1].connected
	}
	for i := range r.workers {
		for _, a := range r.finals[i].Agents {
			s.SamplesAcked += a.AckedUpTo
			s.AgentReports = append(s.AgentReports, a)
		}
	}
	for _, u := range r.relayUse {
		s.Relays = append(s.Relays, u.result())
	}
	return s
}

// Print writes the summary for people.
func (s *Summary) Print(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n== fleetsim summary ==\n")
	signed := "commands signed, checked by each agent against the organisation key it pins"
	if !s.Signed {
		signed = "agents unpinned, commands unsigned"
	}
	fmt.Fprintf(&b, "agents %d in %d worker(s) from %d source address(es), health every %s; %s\n", s.Agents, s.Workers, s.SourceAddrs, s.HealthInterval, signed)
	fmt.Fprintf(&b, "enrolled %d, enroll failures %d, connected at the end %d\n", s.Enrolled, s.EnrollFailed, s.ConnectedAtEnd)
	if s.SettleProblem != "" {
		fmt.Fprintf(&b, "start: %s\n", s.SettleProblem)
	}
	fmt.Fprintf(&b, "connections welcomed %d (reconnects %d), dial failures %d, failed handshakes %d (connections closed before Welcome)\n",
		s.Connects, s.Reconnects, s.DialFailures, s.FailedHandshakes)
	fmt.Fprintf(&b, "health samples taken %d, acknowledged by the relay %d\n", s.SamplesSent, s.SamplesAcked)
	fmt.Fprintf(&b, "relay requests received %d, answered %d, refused by the agents' guard %d; inventory changes %d\n", s.Requests, s.Answered, s.RefusedByAgents, s.InvChanges)
	if where, ok := strings.CutPrefix(s.BlackholeIn, "agents"); ok {
		fmt.Fprintf(&b, "blackholes: at the agents' side%s\n", where)
	} else if s.BlackholeIn != "" {
		fmt.Fprintf(&b, "blackholes: in the %s\n", s.BlackholeIn)
	}
	for _, e := range s.Events {
		fmt.Fprintf(&b, "  %s %s\n", e.Offset, e.line())
	}
	for _, r := range s.Rounds {
		fmt.Fprintf(&b, "  console after %s via %s: %d sent, %d answered, %d refused with a reason %v, %d unanswered\n",
			r.After, r.Relay, r.Sent, r.Answered, r.Refused, reasonsSorted(r.Reasons), r.Unanswered)
	}
	for _, f := range s.FanOuts {
		fmt.Fprintf(&b, "  %s\n", f.line())
	}
	for _, r := range s.Relays {
		fmt.Fprintf(&b, "  %s: peak RSS %.0f MiB, CPU %.1f s (%.0f%% of a core on average, %.0f%% peak over 1 s)",
			r.Name, float64(r.PeakRSS)/(1<<20), r.CPUSeconds, r.AvgCores*100, r.PeakCores*100)
		if r.SteadyFor != "" {
			fmt.Fprintf(&b, "; steady state (fleet up, before any event, %s): %.1f%% of a core", r.SteadyFor, r.SteadyCores*100)
		}
		b.WriteString("\n")
	}
	for _, e := range s.EnrollErrors {
		fmt.Fprintf(&b, "  enroll error: %s\n", e)
	}
	io.WriteString(w, b.String())
}
