// Command benchtable is what `make bench` runs: it runs the benchmarks
// behind every performance figure the issues name, with real processes and
// real TLS where the figure needs them, and prints one table of measured
// values, units and targets. Targets are reported, never asserted: tests
// check behaviour, benchmarks measure speed.
//
// Every benchmark runs several times (-runs, default 3; a row marked once
// runs one time: its figure is a size or takes minutes) and the table
// shows the median with the spread (min–max), so one noisy run on a
// shared machine can neither pass nor fail a figure.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// figure is one row of the table.
type figure struct {
	name      string
	pkg       string
	bench     string // -bench regexp
	benchtime string
	result    string  // benchmark name as printed, without the -N suffix
	metric    string  // unit reported by the benchmark
	scale     float64 // multiply the metric by this for display
	unit      string
	target    float64
	atMost    bool // true: measured ≤ target; false: ≥ target
	once      bool // run one time whatever -runs says (sizes; runs of minutes)
}

var figures = []figure{
	{name: "Agent idle RSS (60 s)", pkg: "./relay/server", bench: "^BenchmarkAgentIdle$", benchtime: "1x",
		result: "BenchmarkAgentIdle", metric: "RSS-MB", scale: 1, unit: "MB", target: 25, atMost: true},
	{name: "Agent idle CPU (60 s)", pkg: "./relay/server", bench: "^BenchmarkAgentIdle$", benchtime: "1x",
		result: "BenchmarkAgentIdle", metric: "CPU-%core", scale: 1, unit: "% of one core", target: 0.1, atMost: true},
	{name: "Tray idle RSS (60 s, icon and page)", pkg: "./agent/tray", bench: "^BenchmarkTrayIdle$", benchtime: "1x",
		result: "BenchmarkTrayIdle", metric: "RSS-MB", scale: 1, unit: "MB", target: 30, atMost: true},
	{name: "Tray idle CPU (60 s, icon and page)", pkg: "./agent/tray", bench: "^BenchmarkTrayIdle$", benchtime: "1x",
		result: "BenchmarkTrayIdle", metric: "CPU-%core", scale: 1, unit: "% of one core", target: 0.1, atMost: true},
	{name: "Agent package size (.deb, xz-compressed)", pkg: "./installer/linuxpkg", bench: "^BenchmarkPackageSize$", benchtime: "1x",
		result: "BenchmarkPackageSize", metric: "agent-deb-MB", scale: 1, unit: "MB", target: 15, atMost: true, once: true},
	{name: "  agent .rpm", pkg: "./installer/linuxpkg", bench: "^BenchmarkPackageSize$", benchtime: "1x",
		result: "BenchmarkPackageSize", metric: "agent-rpm-MB", scale: 1, unit: "MB"},
	{name: "  relay .deb", pkg: "./installer/linuxpkg", bench: "^BenchmarkPackageSize$", benchtime: "1x",
		result: "BenchmarkPackageSize", metric: "relay-deb-MB", scale: 1, unit: "MB"},
	{name: "Inventory collection time", pkg: "./agent/inventory", bench: "^BenchmarkCollect$", benchtime: "20x",
		result: "BenchmarkCollect", metric: "ns/op", scale: 1e-6, unit: "ms", target: 200, atMost: true},
	{name: "Relay memory per idle agent (1,000 over TLS, RSS)", pkg: "./relay/server", bench: "^BenchmarkRelayMemoryPerIdleAgent$", benchtime: "1x",
		result: "BenchmarkRelayMemoryPerIdleAgent", metric: "RSS-KB/agent", scale: 1, unit: "KB", target: 20, atMost: true},
	{name: "  of which Go heap", pkg: "./relay/server", bench: "^BenchmarkRelayMemoryPerIdleAgent$", benchtime: "1x",
		result: "BenchmarkRelayMemoryPerIdleAgent", metric: "heap-KB/agent", scale: 1, unit: "KB"},
	{name: "  of which goroutine stacks", pkg: "./relay/server", bench: "^BenchmarkRelayMemoryPerIdleAgent$", benchtime: "1x",
		result: "BenchmarkRelayMemoryPerIdleAgent", metric: "stack-KB/agent", scale: 1, unit: "KB"},
	{name: "Relay CPU per health report (2,000 agents over mutual TLS, one realistic sample each per 3 s, the rate of 10,000 agents at 15 s; relay in its own process, SQLite)", pkg: "./relay/server", bench: "^BenchmarkRelayCPUPerHealthReport$", benchtime: "1x",
		result: "BenchmarkRelayCPUPerHealthReport", metric: "CPU-ms/report", scale: 1, unit: "ms", target: 0.2, atMost: true},
	{name: "  relay CPU at that rate (about 667 reports/s)", pkg: "./relay/server", bench: "^BenchmarkRelayCPUPerHealthReport$", benchtime: "1x",
		result: "BenchmarkRelayCPUPerHealthReport", metric: "CPU-%core", scale: 1, unit: "% of one core"},
	{name: "  the same cost at 10,000 agents, one sample per 15 s each (CPU per report × 667/s)", pkg: "./relay/server", bench: "^BenchmarkRelayCPUPerHealthReport$", benchtime: "1x",
		result: "BenchmarkRelayCPUPerHealthReport", metric: "CPU-%core-10k-15s", scale: 1, unit: "% of one core", target: 25, atMost: true},
	{name: "  Ack p50", pkg: "./relay/server", bench: "^BenchmarkRelayCPUPerHealthReport$", benchtime: "1x",
		result: "BenchmarkRelayCPUPerHealthReport", metric: "ack-p50-ms", scale: 1, unit: "ms"},
	{name: "  Ack p99", pkg: "./relay/server", bench: "^BenchmarkRelayCPUPerHealthReport$", benchtime: "1x",
		result: "BenchmarkRelayCPUPerHealthReport", metric: "ack-p99-ms", scale: 1, unit: "ms"},
	{name: "  reports per store transaction", pkg: "./relay/server", bench: "^BenchmarkRelayCPUPerHealthReport$", benchtime: "1x",
		result: "BenchmarkRelayCPUPerHealthReport", metric: "reports/tx", scale: 1, unit: "reports"},
	{name: "Ingest headroom: health samples/s one relay acks with Ack p99 ≤ 100 ms (2,000 agents over mutual TLS, rate stepped 400→6,400/s, relay in its own process, SQLite)", pkg: "./relay/server", bench: "^BenchmarkIngestHeadroom$", benchtime: "1x",
		result: "BenchmarkIngestHeadroom", metric: "samples/s", scale: 1, unit: "samples/s", once: true},
	{name: "  agents one relay takes at one sample per 15 s each (headroom × 15)", pkg: "./relay/server", bench: "^BenchmarkIngestHeadroom$", benchtime: "1x",
		result: "BenchmarkIngestHeadroom", metric: "agents-at-15s", scale: 1, unit: "agents"},
	{name: "  Ack p99 at that step", pkg: "./relay/server", bench: "^BenchmarkIngestHeadroom$", benchtime: "1x",
		result: "BenchmarkIngestHeadroom", metric: "ack-p99-ms", scale: 1, unit: "ms"},
	{name: "  relay CPU at that step", pkg: "./relay/server", bench: "^BenchmarkIngestHeadroom$", benchtime: "1x",
		result: "BenchmarkIngestHeadroom", metric: "CPU-%core", scale: 1, unit: "% of one core"},
	{name: "Health-sample ingest into SQLite (batches of 500)", pkg: "./relay/store/sqlite", bench: "^BenchmarkHealthIngest$", benchtime: "3s",
		result: "BenchmarkHealthIngest/batch=500", metric: "samples/s", scale: 1, unit: "samples/s", target: 20000},
	{name: "Health on disk, SQLite: bytes per raw sample (512-byte detail, indexes included)", pkg: "./relay/store/sqlite", bench: "^BenchmarkHealthStoreGrowth$", benchtime: "1x",
		result: "BenchmarkHealthStoreGrowth", metric: "B/sample", scale: 1, unit: "bytes", once: true},
	{name: "  bytes per hourly average once downsampled", pkg: "./relay/store/sqlite", bench: "^BenchmarkHealthStoreGrowth$", benchtime: "1x",
		result: "BenchmarkHealthStoreGrowth", metric: "B/hourly-point", scale: 1, unit: "bytes", once: true},
	{name: "  10,000 agents, a sample per 15 s: growth per day", pkg: "./relay/store/sqlite", bench: "^BenchmarkHealthStoreGrowth$", benchtime: "1x",
		result: "BenchmarkHealthStoreGrowth", metric: "GB/day@10k", scale: 1, unit: "GB", once: true},
	{name: "  10,000 agents, default retention (raw 7 days, hourly 400 days): size at steady state", pkg: "./relay/store/sqlite", bench: "^BenchmarkHealthStoreGrowth$", benchtime: "1x",
		result: "BenchmarkHealthStoreGrowth", metric: "GB-steady@10k", scale: 1, unit: "GB", once: true},
	{name: "Health-sample ingest into SQLite (batches of 100)", pkg: "./relay/store/sqlite", bench: "^BenchmarkHealthIngest$", benchtime: "3s",
		result: "BenchmarkHealthIngest/batch=100", metric: "samples/s", scale: 1, unit: "samples/s", target: 20000},
	{name: "Health-sample ingest into PostgreSQL (batches of 500)", pkg: "./relay/store/postgres", bench: "^BenchmarkHealthIngest$", benchtime: "3s",
		result: "BenchmarkHealthIngest/batch=500", metric: "samples/s", scale: 1, unit: "samples/s", target: 20000},
	{name: "Audit appends, a fan-out's results (2,000 records from 256 goroutines at once), PostgreSQL", pkg: "./relay/audit", bench: "^BenchmarkAppendFanOut$", benchtime: "3x",
		result: "BenchmarkAppendFanOut/store=postgres", metric: "records/s", scale: 1, unit: "records/s"},
	{name: "  one append's wait, p99", pkg: "./relay/audit", bench: "^BenchmarkAppendFanOut$", benchtime: "3x",
		result: "BenchmarkAppendFanOut/store=postgres", metric: "p99-ms", scale: 1, unit: "ms"},
	{name: "  the same on SQLite", pkg: "./relay/audit", bench: "^BenchmarkAppendFanOut$", benchtime: "3x",
		result: "BenchmarkAppendFanOut/store=sqlite", metric: "records/s", scale: 1, unit: "records/s"},
	{name: "Ticket lookup by code, 100,000 tickets in SQLite: p99", pkg: "./relay/store/sqlite", bench: "^BenchmarkTickets$", benchtime: "2s",
		result: "BenchmarkTickets/lookup", metric: "p99-ms", scale: 1, unit: "ms", target: 5, atMost: true},
	{name: "Ticket queue page (one tier's active, 50 + total), 100,000 tickets in SQLite: p99", pkg: "./relay/store/sqlite", bench: "^BenchmarkTickets$", benchtime: "2s",
		result: "BenchmarkTickets/queue", metric: "p99-ms", scale: 1, unit: "ms", target: 100, atMost: true},
	{name: "Ticket search, two common words, 100,000 tickets in SQLite: p99", pkg: "./relay/store/sqlite", bench: "^BenchmarkTickets$", benchtime: "2s",
		result: "BenchmarkTickets/search", metric: "p99-ms", scale: 1, unit: "ms"},
	{name: "Reports, every section over 30 days, 100,000 tickets in SQLite: p99", pkg: "./relay/store/sqlite", bench: "^BenchmarkReports$", benchtime: "3x",
		result: "BenchmarkReports", metric: "p99-ms", scale: 1e-3, unit: "s", target: 2, atMost: true},
	{name: "Backup of a running SQLite relay, 1,000 devices × a day of health (5.76 M samples)", pkg: "./relay/backup", bench: "^BenchmarkBackup$", benchtime: "1x",
		result: "BenchmarkBackup", metric: "ns/op", scale: 1e-9, unit: "s", once: true},
	{name: "  database size", pkg: "./relay/backup", bench: "^BenchmarkBackup$", benchtime: "1x",
		result: "BenchmarkBackup", metric: "db-MB", scale: 1, unit: "MB"},
	{name: "  archive size (tar.gz, snapshot by VACUUM INTO)", pkg: "./relay/backup", bench: "^BenchmarkBackup$", benchtime: "1x",
		result: "BenchmarkBackup", metric: "archive-MB", scale: 1, unit: "MB"},
	{name: "  restore of that archive", pkg: "./relay/backup", bench: "^BenchmarkBackup$", benchtime: "1x",
		result: "BenchmarkBackup", metric: "restore-s", scale: 1, unit: "s"},
	{name: "Get help submitted → ticket in the queue (real agent, 1 MiB PNG): p50", pkg: "./relay/server", bench: "^BenchmarkGetHelpToQueue$", benchtime: "1x",
		result: "BenchmarkGetHelpToQueue", metric: "p50-ms", scale: 1, unit: "ms", target: 2000, atMost: true},
	{name: "Get help submitted → ticket in the queue (real agent, 1 MiB PNG): p99", pkg: "./relay/server", bench: "^BenchmarkGetHelpToQueue$", benchtime: "1x",
		result: "BenchmarkGetHelpToQueue", metric: "p99-ms", scale: 1, unit: "ms", target: 2000, atMost: true},
	{name: "KB search over 10,000 articles, SQLite FTS5: p99", pkg: "./relay/store/sqlite", bench: "^BenchmarkKBSearch$", benchtime: "300x",
		result: "BenchmarkKBSearch", metric: "p99-ms", scale: 1, unit: "ms", target: 20, atMost: true},
	{name: "KB search over 10,000 articles, PostgreSQL full text: p99", pkg: "./relay/store/postgres", bench: "^BenchmarkKBSearch$", benchtime: "300x",
		result: "BenchmarkKBSearch", metric: "p99-ms", scale: 1, unit: "ms", target: 20, atMost: true},
	{name: "Console request across two relays over NATS (bus.Request round trip)", pkg: "./relay/bus/natsbus", bench: "^BenchmarkRequest$", benchtime: "2s",
		result: "BenchmarkRequest", metric: "ns/op", scale: 1e-3, unit: "µs"},
	{name: "Fleet page, 10,000 devices: first render (Chromium)", pkg: "./console/webtest", bench: "^BenchmarkFleetPage10k$", benchtime: "5x",
		result: "BenchmarkFleetPage10k", metric: "first-render-ms", scale: 1, unit: "ms", target: 500, atMost: true},
	{name: "  of which until the list is asked for (document, bundle, WhoAmI)", pkg: "./console/webtest", bench: "^BenchmarkFleetPage10k$", benchtime: "5x",
		result: "BenchmarkFleetPage10k", metric: "list-start-ms", scale: 1, unit: "ms"},
	{name: "  of which the list's round trip", pkg: "./console/webtest", bench: "^BenchmarkFleetPage10k$", benchtime: "5x",
		result: "BenchmarkFleetPage10k", metric: "list-rpc-ms", scale: 1, unit: "ms"},
	{name: "Fleet page, 10,000 devices: apply a filter (Chromium)", pkg: "./console/webtest", bench: "^BenchmarkFleetPage10k$", benchtime: "5x",
		result: "BenchmarkFleetPage10k", metric: "filter-ms", scale: 1, unit: "ms", target: 100, atMost: true},
	{name: "Fleet page, 10,000 devices: live updates per second absorbed (NATS → relay → page, last one ≤ 1 s behind)", pkg: "./console/webtest", bench: "^BenchmarkFleetLiveUpdates$", benchtime: "1x",
		result: "BenchmarkFleetLiveUpdates", metric: "updates/s", scale: 1, unit: "updates/s"},
	{name: "  the last update's lag at that rate", pkg: "./console/webtest", bench: "^BenchmarkFleetLiveUpdates$", benchtime: "1x",
		result: "BenchmarkFleetLiveUpdates", metric: "lag-ms", scale: 1, unit: "ms"},
	{name: "Fleet page, 1,000 live simulated agents (fleetsim; DESKSIDE_BENCH_FLEET=10000 for 10,000): first render (Chromium)", pkg: "./console/webtest", bench: "^BenchmarkFleetPageLiveAgents$", benchtime: "5x",
		result: "BenchmarkFleetPageLiveAgents", metric: "first-render-ms", scale: 1, unit: "ms", target: 500, atMost: true, once: true},
	{name: "  apply a filter", pkg: "./console/webtest", bench: "^BenchmarkFleetPageLiveAgents$", benchtime: "5x",
		result: "BenchmarkFleetPageLiveAgents", metric: "filter-ms", scale: 1, unit: "ms", target: 100, atMost: true, once: true},
	{name: "  live updates the page applied per second, 30 s of steady state (health every 15 s)", pkg: "./console/webtest", bench: "^BenchmarkFleetPageLiveAgents$", benchtime: "5x",
		result: "BenchmarkFleetPageLiveAgents", metric: "steady-updates/s", scale: 1, unit: "updates/s", once: true},
	{name: "  inventory change on 25 % of agents: updates the page applied", pkg: "./console/webtest", bench: "^BenchmarkFleetPageLiveAgents$", benchtime: "5x",
		result: "BenchmarkFleetPageLiveAgents", metric: "event-updates", scale: 1, unit: "updates", once: true},
	{name: "  inventory change: updates per second the page applied until caught up", pkg: "./console/webtest", bench: "^BenchmarkFleetPageLiveAgents$", benchtime: "5x",
		result: "BenchmarkFleetPageLiveAgents", metric: "event-updates/s", scale: 1, unit: "updates/s", once: true},
	{name: "  inventory change: until the page applied its last update", pkg: "./console/webtest", bench: "^BenchmarkFleetPageLiveAgents$", benchtime: "5x",
		result: "BenchmarkFleetPageLiveAgents", metric: "catch-up-ms", scale: 1, unit: "ms", once: true},
	{name: "  inventory change: until the relay sent its last update (a Go watcher)", pkg: "./console/webtest", bench: "^BenchmarkFleetPageLiveAgents$", benchtime: "5x",
		result: "BenchmarkFleetPageLiveAgents", metric: "relay-catch-up-ms", scale: 1, unit: "ms", once: true},
	{name: "Tickets page, 100,000 tickets: first render (Chromium)", pkg: "./console/webtest", bench: "^BenchmarkTicketsPage100k$", benchtime: "3x",
		result: "BenchmarkTicketsPage100k", metric: "first-render-ms", scale: 1, unit: "ms", target: 500, atMost: true},
	{name: "Tickets page, 100,000 tickets: apply a filter (Chromium)", pkg: "./console/webtest", bench: "^BenchmarkTicketsPage100k$", benchtime: "3x",
		result: "BenchmarkTicketsPage100k", metric: "filter-ms", scale: 1, unit: "ms", target: 100, atMost: true},
	{name: "Command dispatch, request → first output byte, 1,000 agents: p50", pkg: "./relay/server", bench: "^BenchmarkCommandDispatch$", benchtime: "1x",
		result: "BenchmarkCommandDispatch", metric: "p50-ms", scale: 1, unit: "ms", target: 20, atMost: true},
	{name: "Command dispatch, request → first output byte, 1,000 agents: p99", pkg: "./relay/server", bench: "^BenchmarkCommandDispatch$", benchtime: "1x",
		result: "BenchmarkCommandDispatch", metric: "p99-ms", scale: 1, unit: "ms", target: 100, atMost: true},
	{name: "Signed envelope: added dispatch latency p50 (request → first output byte, signed − unsigned, real relay and agent)", pkg: "./relay/server", bench: "^BenchmarkEnvelopeDispatchLatency$", benchtime: "1x",
		result: "BenchmarkEnvelopeDispatchLatency", metric: "added-p50-ms", scale: 1, unit: "ms", target: 1, atMost: true},
	{name: "  of which seal (CLI) + verify (agent), CPU only, p50", pkg: "./proto/wire/envelope", bench: "^BenchmarkSealVerify$", benchtime: "2000x",
		result: "BenchmarkSealVerify", metric: "p50-ms", scale: 1, unit: "ms"},
	{name: "Signed envelope: fan-out to 1,000 (seal, tree, proofs, 1,000 verifies serially)", pkg: "./proto/wire/envelope", bench: "^BenchmarkFanout1000$", benchtime: "5x",
		result: "BenchmarkFanout1000", metric: "ns/op", scale: 1e-6, unit: "ms"},
	{name: "Fan-out `echo` to 1,000 agents, all results back", pkg: "./relay/server", bench: "^BenchmarkFanOutEcho1000$", benchtime: "1x",
		result: "BenchmarkFanOutEcho1000", metric: "s/fanout", scale: 1, unit: "s", target: 2, atMost: true},
	{name: "  the relay's fan-out alone: 1,000 agents answering in process (no `sh` started)", pkg: "./relay/server", bench: "^BenchmarkFanOutInProcess1000$", benchtime: "1x",
		result: "BenchmarkFanOutInProcess1000", metric: "s/fanout", scale: 1, unit: "s", target: 2, atMost: true},
	{name: "Fan-out `echo` to 1,000 agents in one process, envelopes (pinned agents, one signature) ÷ without (unpinned), same run", pkg: "./relay/server", bench: "^BenchmarkFanOutEnvelopes1000$", benchtime: "1x",
		result: "BenchmarkFanOutEnvelopes1000", metric: "ratio", scale: 1, unit: "×", target: 1.1, atMost: true},
	{name: "  with envelopes (median)", pkg: "./relay/server", bench: "^BenchmarkFanOutEnvelopes1000$", benchtime: "1x",
		result: "BenchmarkFanOutEnvelopes1000", metric: "s/fanout-signed", scale: 1, unit: "s"},
	{name: "  without envelopes (median)", pkg: "./relay/server", bench: "^BenchmarkFanOutEnvelopes1000$", benchtime: "1x",
		result: "BenchmarkFanOutEnvelopes1000", metric: "s/fanout-unsigned", scale: 1, unit: "s"},
	{name: "  envelope carried to unpinned agents, not verified (seal, relay's tree, proofs, revocation list, larger messages) ÷ without", pkg: "./relay/server", bench: "^BenchmarkFanOutEnvelopes1000$", benchtime: "1x",
		result: "BenchmarkFanOutEnvelopes1000", metric: "relay-ratio", scale: 1, unit: "×"},
	{name: "  one agent's guard check, signed (median; each agent pays it on its own machine)", pkg: "./relay/server", bench: "^BenchmarkFanOutEnvelopes1000$", benchtime: "1x",
		result: "BenchmarkFanOutEnvelopes1000", metric: "ms/agent-check-signed", scale: 1, unit: "ms"},
	{name: "  one agent's guard check, unsigned (median)", pkg: "./relay/server", bench: "^BenchmarkFanOutEnvelopes1000$", benchtime: "1x",
		result: "BenchmarkFanOutEnvelopes1000", metric: "ms/agent-check-unsigned", scale: 1, unit: "ms"},
	{name: "  the 1,000 signed checks summed per round (what this host's 2 cores pay; a fleet pays it in parallel)", pkg: "./relay/server", bench: "^BenchmarkFanOutEnvelopes1000$", benchtime: "1x",
		result: "BenchmarkFanOutEnvelopes1000", metric: "s/checks-sum-signed", scale: 1, unit: "s"},
	{name: "Relay ingest, 1,000 agents sending health: Ack p99 without a flood", pkg: "./relay/server", bench: "^BenchmarkIngestUnderFlood$", benchtime: "1x",
		result: "BenchmarkIngestUnderFlood", metric: "p99-ms-normal", scale: 1, unit: "ms"},
	{name: "  Ack p99 while one agent floods", pkg: "./relay/server", bench: "^BenchmarkIngestUnderFlood$", benchtime: "1x",
		result: "BenchmarkIngestUnderFlood", metric: "p99-ms-flood", scale: 1, unit: "ms"},
	{name: "  p99 under flood ÷ p99 without", pkg: "./relay/server", bench: "^BenchmarkIngestUnderFlood$", benchtime: "1x",
		result: "BenchmarkIngestUnderFlood", metric: "p99-ratio", scale: 1, unit: "×", target: 2, atMost: true},
	{name: "Staged update of 1,000 agents, one relay, 10 % then 100 % (the real agent, stripped)", pkg: "./relay/server", bench: "^BenchmarkStagedUpdate1000$", benchtime: "1x",
		result: "BenchmarkStagedUpdate1000", metric: "total-s", scale: 1, unit: "s", target: 300, atMost: true, once: true},
	{name: "  release size", pkg: "./relay/server", bench: "^BenchmarkStagedUpdate1000$", benchtime: "1x",
		result: "BenchmarkStagedUpdate1000", metric: "release-MB", scale: 1, unit: "MB"},
	{name: "  of which the 10 % stage", pkg: "./relay/server", bench: "^BenchmarkStagedUpdate1000$", benchtime: "1x",
		result: "BenchmarkStagedUpdate1000", metric: "stage10-s", scale: 1, unit: "s"},
	{name: "  relay CPU time over both stages (relay in its own process)", pkg: "./relay/server", bench: "^BenchmarkStagedUpdate1000$", benchtime: "1x",
		result: "BenchmarkStagedUpdate1000", metric: "relay-CPU-s", scale: 1, unit: "s"},
	{name: "  relay CPU over both stages, average", pkg: "./relay/server", bench: "^BenchmarkStagedUpdate1000$", benchtime: "1x",
		result: "BenchmarkStagedUpdate1000", metric: "relay-CPU-%core", scale: 1, unit: "% of one core"},
	{name: "Triage report on one device (all checks)", pkg: "./agent/diag", bench: "^BenchmarkTriage$", benchtime: "3x",
		result: "BenchmarkTriage", metric: "ns/op", scale: 1e-9, unit: "s", target: 5, atMost: true},
	{name: "Screen capture 1920×1080 (MIT-SHM, whole screen changed)", pkg: "./agent/desktop/capture", bench: "^BenchmarkCapture1080p$", benchtime: "200x",
		result: "BenchmarkCapture1080p", metric: "ms/frame", scale: 1, unit: "ms/frame", target: 5, atMost: true},
	{name: "VP8 encode 1920×1080 scrolling text (libvpx real-time)", pkg: "./agent/desktop/encode", bench: "^BenchmarkEncode1080p$", benchtime: "60x",
		result: "BenchmarkEncode1080p", metric: "ms/frame", scale: 1, unit: "ms/frame", target: 10, atMost: true},
	{name: "Desktop session start: request → first decoded frame (Go viewer, 1080p, median of 5)", pkg: "./agent/desktop", bench: "^BenchmarkDesktopSessionStart$", benchtime: "1x",
		result: "BenchmarkDesktopSessionStart", metric: "first-frame-ms", scale: 1e-3, unit: "s", target: 1, atMost: true},
	{name: "Desktop frame rate, 1080p screen changing every frame (decoded at the viewer, 5 s)", pkg: "./agent/desktop", bench: "^BenchmarkDesktopFrameRate$", benchtime: "1x",
		result: "BenchmarkDesktopFrameRate", metric: "fps", scale: 1, unit: "fps", target: 30},
	{name: "Desktop bitrate at 1080p: idle screen", pkg: "./agent/desktop", bench: "^BenchmarkDesktopBitrate$", benchtime: "1x",
		result: "BenchmarkDesktopBitrate/idle", metric: "kbit/s", scale: 1, unit: "kbit/s", target: 50, atMost: true},
	{name: "Desktop bitrate at 1080p: typing in an editor (8 chars/s)", pkg: "./agent/desktop", bench: "^BenchmarkDesktopBitrate$", benchtime: "1x",
		result: "BenchmarkDesktopBitrate/typing", metric: "kbit/s", scale: 1, unit: "kbit/s", target: 300, atMost: true},
	{name: "Desktop bitrate at 1080p: full-screen scrolling text", pkg: "./agent/desktop", bench: "^BenchmarkDesktopBitrate$", benchtime: "1x",
		result: "BenchmarkDesktopBitrate/scrolling", metric: "kbit/s", scale: 1e-3, unit: "Mbit/s", target: 1.5, atMost: true},
	{name: "Agent RSS during a 1080p desktop session (deskside-agent process)", pkg: "./agent/desktop", bench: "^BenchmarkDesktopAgentRSS$", benchtime: "1x",
		result: "BenchmarkDesktopAgentRSS", metric: "RSS-MB", scale: 1, unit: "MB", target: 100, atMost: true},
	{name: "Desktop helper start, service as root → helper as the user says hello (1080p)", pkg: "./agent/desktop", bench: "^BenchmarkDesktopHelper$", benchtime: "1x",
		result: "BenchmarkDesktopHelper", metric: "helper-start-ms", scale: 1, unit: "ms"},
	{name: "  session start through the helper: request → first decoded frame", pkg: "./agent/desktop", bench: "^BenchmarkDesktopHelper$", benchtime: "1x",
		result: "BenchmarkDesktopHelper", metric: "first-frame-ms", scale: 1e-3, unit: "s", target: 1, atMost: true},
	{name: "  helper RSS during a session on an idle 1080p screen", pkg: "./agent/desktop", bench: "^BenchmarkDesktopHelper$", benchtime: "1x",
		result: "BenchmarkDesktopHelper", metric: "helper-RSS-MB", scale: 1, unit: "MB"},
	{name: "  helper CPU during a session on an idle 1080p screen (10 s)", pkg: "./agent/desktop", bench: "^BenchmarkDesktopHelper$", benchtime: "1x",
		result: "BenchmarkDesktopHelper", metric: "helper-CPU-%", scale: 1, unit: "% of one core"},
	{name: "TURN relay: relayed 1 Mbit/s flows per core, video-like (frames of 5 packets, 25 a second; 200 flows, server in its own process, median of 3 rounds)", pkg: "./relay/turnserver", bench: "^BenchmarkTURNRelayFlows$", benchtime: "1x",
		result: "BenchmarkTURNRelayFlows", metric: "flows/core", scale: 1, unit: "flows/core", target: 1000},
	{name: "  TURN relay, slowest round", pkg: "./relay/turnserver", bench: "^BenchmarkTURNRelayFlows$", benchtime: "1x",
		result: "BenchmarkTURNRelayFlows", metric: "flows/core-min", scale: 1, unit: "flows/core"},
	{name: "  TURN relay, fastest round", pkg: "./relay/turnserver", bench: "^BenchmarkTURNRelayFlows$", benchtime: "1x",
		result: "BenchmarkTURNRelayFlows", metric: "flows/core-max", scale: 1, unit: "flows/core"},
	{name: "  packet loss through the TURN relay (200 flows)", pkg: "./relay/turnserver", bench: "^BenchmarkTURNRelayFlows$", benchtime: "1x",
		result: "BenchmarkTURNRelayFlows", metric: "loss-%", scale: 1, unit: "%"},
	{name: "  coturn as TURN server, same run, machine and load generator: flows per core (median)", pkg: "./relay/turnserver", bench: "^BenchmarkTURNRelayFlows$", benchtime: "1x",
		result: "BenchmarkTURNRelayFlows", metric: "coturn-flows/core", scale: 1, unit: "flows/core"},
	{name: "  coturn as TURN server: packet loss", pkg: "./relay/turnserver", bench: "^BenchmarkTURNRelayFlows$", benchtime: "1x",
		result: "BenchmarkTURNRelayFlows", metric: "coturn-loss-%", scale: 1, unit: "%"},
	{name: "  TURN relay ÷ coturn, flows per core (median of the rounds' ratios; > 1: ahead)", pkg: "./relay/turnserver", bench: "^BenchmarkTURNRelayFlows$", benchtime: "1x",
		result: "BenchmarkTURNRelayFlows", metric: "vs-coturn", scale: 1, unit: "×", target: 1},
	{name: "TURN relay, evenly paced packets (one every 8 ms, the worst case for batching): flows per core (median)", pkg: "./relay/turnserver", bench: "^BenchmarkTURNRelayFlows$", benchtime: "1x",
		result: "BenchmarkTURNRelayFlows", metric: "paced-flows/core", scale: 1, unit: "flows/core"},
	{name: "  paced: TURN relay, slowest round", pkg: "./relay/turnserver", bench: "^BenchmarkTURNRelayFlows$", benchtime: "1x",
		result: "BenchmarkTURNRelayFlows", metric: "paced-flows/core-min", scale: 1, unit: "flows/core"},
	{name: "  paced: packet loss through the TURN relay", pkg: "./relay/turnserver", bench: "^BenchmarkTURNRelayFlows$", benchtime: "1x",
		result: "BenchmarkTURNRelayFlows", metric: "paced-loss-%", scale: 1, unit: "%"},
	{name: "  paced: coturn as TURN server, flows per core (median)", pkg: "./relay/turnserver", bench: "^BenchmarkTURNRelayFlows$", benchtime: "1x",
		result: "BenchmarkTURNRelayFlows", metric: "paced-coturn-flows/core", scale: 1, unit: "flows/core"},
	{name: "  paced: TURN relay ÷ coturn (median of the rounds' ratios; > 1: ahead)", pkg: "./relay/turnserver", bench: "^BenchmarkTURNRelayFlows$", benchtime: "1x",
		result: "BenchmarkTURNRelayFlows", metric: "paced-vs-coturn", scale: 1, unit: "×", target: 1},
	{name: "Desktop glass-to-glass latency, loopback, Chromium (requestVideoFrameCallback): p50", pkg: "./console/webtest", bench: "^BenchmarkGlassToGlass$", benchtime: "1x",
		result: "BenchmarkGlassToGlass", metric: "p50-ms", scale: 1, unit: "ms", target: 50, atMost: true},
	{name: "Desktop glass-to-glass latency, loopback, Chromium: p95", pkg: "./console/webtest", bench: "^BenchmarkGlassToGlass$", benchtime: "1x",
		result: "BenchmarkGlassToGlass", metric: "p95-ms", scale: 1, unit: "ms", target: 80, atMost: true},
}

var line = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

func main() {
	only := flag.String("only", "", "run only figures whose name contains this")
	runs := flag.Int("runs", 3, "how many times to run each benchmark (its figure is the median); rows marked once run one time")
	flag.Parse()
	// Run each distinct (pkg, bench, benchtime) once, with -count.
	results := map[string]map[string][]float64{} // benchmark → unit → values of each run
	ran := map[string]bool{}
	once := map[string]bool{} // key → some row of it is marked once
	for _, f := range figures {
		once[f.pkg+" "+f.bench+" "+f.benchtime] = once[f.pkg+" "+f.bench+" "+f.benchtime] || f.once
	}
	failed := false
	for _, f := range figures {
		if *only != "" && !strings.Contains(f.name, *only) {
			continue
		}
		key := f.pkg + " " + f.bench + " " + f.benchtime
		if ran[key] {
			continue
		}
		ran[key] = true
		count := max(*runs, 1)
		if once[key] {
			count = 1
		}
		fmt.Fprintf(os.Stderr, "running %s %s (%d×) ...\n", f.pkg, f.bench, count)
		cmd := exec.Command("go", "test", "-run", "^$", "-bench", f.bench, "-benchtime", f.benchtime, "-count", strconv.Itoa(count), "-timeout", "60m", f.pkg)
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			// Report what ran; the failed figures show as n/a.
			fmt.Fprintf(os.Stderr, "%s %s failed: %v\n%s", f.pkg, f.bench, err, out.String())
			failed = true
		}
		parse(&out, f.pkg, results)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tMEDIAN\tSPREAD (RUNS)\tUNIT\tTARGET\tMET")
	for _, f := range figures {
		if *only != "" && !strings.Contains(f.name, *only) {
			continue
		}
		vals := results[f.pkg+" "+f.result][f.metric]
		measured, spread := "n/a", ""
		v, ok := median(vals)
		v *= f.scale
		if ok {
			measured = format(v)
			spread = "(1)"
			if len(vals) > 1 {
				lo, hi := slices.Min(vals)*f.scale, slices.Max(vals)*f.scale
				if lo > hi {
					lo, hi = hi, lo
				}
				spread = format(lo) + "–" + format(hi) + " (" + strconv.Itoa(len(vals)) + ")"
			}
		}
		target, met := "", ""
		if f.target != 0 {
			op := "≥"
			if f.atMost {
				op = "≤"
			}
			target = op + " " + strconv.FormatFloat(f.target, 'f', -1, 64)
			switch {
			case !ok:
				met = "?"
			case f.atMost == (v <= f.target):
				met = "yes"
			default:
				met = "NO"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.name, measured, spread, f.unit, target, met)
	}
	tw.Flush()
	if failed {
		os.Exit(1)
	}
}

// parse adds the values of each benchmark result line in out to results,
// one value per run (go test -count prints a line per run).
func parse(out *bytes.Buffer, pkg string, results map[string]map[string][]float64) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		k := pkg + " " + m[1] // the same name may come from two packages
		if results[k] == nil {
			results[k] = map[string][]float64{}
		}
		fields := strings.Fields(m[3])
		for i := 0; i+1 < len(fields); i += 2 {
			if v, err := strconv.ParseFloat(fields[i], 64); err == nil {
				results[k][fields[i+1]] = append(results[k][fields[i+1]], v)
			}
		}
	}
}

// median returns the median of vals (the mean of the middle two for an
// even count); false when there are none.
func median(vals []float64) (float64, bool) {
	if len(vals) == 0 {
		return 0, false
	}
	s := slices.Sorted(slices.Values(vals))
	if n := len(s); n%2 == 1 {
		return s[n/2], true
	} else {
		return (s[n/2-1] + s[n/2]) / 2, true
	}
}

func format(v float64) string { return strconv.FormatFloat(v, 'f', precision(v), 64) }

func precision(v float64) int {
	switch {
	case v >= 1000:
		return 0
	case v >= 10:
		return 1
	case v >= 1:
		return 2
	default:
		return 3
	}
}
