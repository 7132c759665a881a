package server_test

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkIngestHeadroom finds how many health samples per second one
// relay acknowledges before its Acks slow down (issue 15). The set-up is
// BenchmarkRelayCPUPerHealthReport's: the relay in its own process
// (SQLite), 2,000 agents (env DESKSIDE_BENCH_AGENTS) over their own
// mutual-TLS streams from this process, one realistic sample per report,
// each agent waiting for its Ack. The agent count stays fixed and the
// aggregate rate is stepped up by shortening every agent's interval: 400,
// 800, 1,200, 1,600, 2,400, 3,200, 4,800 and 6,400 samples/s (env
// DESKSIDE_BENCH_RATES, a comma-separated list; at 2,000 agents the
// interval goes from 5 s to 312 ms), each step measured over a window of
// 15 s (env DESKSIDE_BENCH_WINDOW) after one interval and 2 s of warm-up.
// Steps are by rate, not by agent count, because the relay's per-device
// ingest limits follow its health interval: it is started with the
// fastest step's interval (at least the relay's minimum of 100 ms), whose
// limits allow four times that rate per device, so no step is refused
// for being over a limit.
//
// A step keeps up when the acked rate is at least 97 % of the offered one,
// the Ack p99 is at most 100 ms and nothing was refused. The headroom is
// the acked rate of the highest step that keeps up; the steps stop at the
// first that does not. Each step logs the offered and acked rates, Ack
// p50/p99, reports per store transaction, the CPU of the relay and of this
// process (the agents' side) as percents of one core, the time the
// relay's threads waited for a CPU (taken by other work on a shared
// machine) and for the disk, and the load average. Reported: samples/s
// (the headroom), agents-at-15s (the headroom × 15: the agents one relay
// takes at one sample per 15 s each), and the Ack p99 and relay
// CPU at that step. Figures, not assertions: on a shared machine the
// agents' side and other work take CPU from the relay.
func BenchmarkIngestHeadroom(b *testing.B) {
	rates := []float64{400, 800, 1200, 1600, 2400, 3200, 4800, 6400}
	if v := os.Getenv("DESKSIDE_BENCH_RATES"); v != "" {
		rates = nil
		for f := range strings.SplitSeq(v, ",") {
			r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || r <= 0 {
				b.Fatalf("DESKSIDE_BENCH_RATES=%q: want rising samples/s such as 400,800,1600", v)
			}
			rates = append(rates, r)
		}
	}
	agents := benchEnvInt(b, "DESKSIDE_BENCH_AGENTS", 2000)
	window := benchEnvDuration(b, "DESKSIDE_BENCH_WINDOW", 15*time.Second)
	interval := func(rate float64) time.Duration {
		return time.Duration(float64(agents) / rate * float64(time.Second)).Round(time.Millisecond)
	}
	fastest := interval(slices.Max(rates))
	f := startHealthFleet(b, max(fastest, 100*time.Millisecond))

	var best *healthLoad
	for i, rate := range rates {
		iv := interval(rate)
		l := f.send(b, iv, iv+2*time.Second, window, nil)
		p99 := percentile(l.lat, .99)
		ok := l.rate() >= 0.97*l.offered && p99 <= 100*time.Millisecond && l.refused == 0
		verdict := "keeps up"
		if !ok {
			verdict = "falls behind"
		}
		load, _ := os.ReadFile("/proc/loadavg")
		perTx := 0.0
		if l.txs > 0 {
			perTx = float64(l.acked) / l.txs
		}
		b.Logf("step %d: %d agents every %s: offered %.0f/s, acked %.0f/s (%.1f %%), Ack p50 %s p99 %s, %d refused, %.1f reports per store transaction; "+
			"relay CPU %.0f %% of one core (and %.0f %% waiting for a CPU), in disk wait %s (longest %s), agents %.0f %%; load average %s: %s",
			i+1, agents, iv, l.offered, l.rate(), l.rate()/l.offered*100, percentile(l.lat, .5).Round(10*time.Microsecond), p99.Round(10*time.Microsecond), l.refused, perTx,
			l.cpuPercent(l.relayCPU), l.cpuPercent(l.relayWait), l.diskWait, l.diskWaitMax, l.cpuPercent(l.ownCPU), strings.TrimSpace(string(load)), verdict)
		if !ok {
			break
		}
		best = l
	}
	if best == nil {
		b.Logf("no step kept up: headroom below %.0f samples/s", rates[0])
		b.ReportMetric(0, "samples/s")
		b.ReportMetric(0, "agents-at-15s")
	} else {
		b.ReportMetric(best.rate(), "samples/s")
		b.ReportMetric(best.rate()*15, "agents-at-15s")
		b.ReportMetric(ms(percentile(best.lat, .99)), "ack-p99-ms")
		b.ReportMetric(best.cpuPercent(best.relayCPU), "CPU-%core")
	}
	b.ReportMetric(0, "ns/op")
}
