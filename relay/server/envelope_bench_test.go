package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/agent/orgtrust"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/server/servertest"
)

// switchGuard is one agent's guard: its pinned orgtrust.Guard (its state
// directory pins the organisation key) while pinned is set, else an
// orgtrust.Guard of a directory without a pin, as an agent that never
// pinned a key has. Both read the local policy for every request. With
// times set, it adds how long each check took.
type switchGuard struct {
	pinned  *atomic.Bool
	with    *orgtrust.Guard
	without *orgtrust.Guard
	times   *checkTimes
}

func (g switchGuard) Check(m *desksidev1.RelayMessage) error {
	start := time.Now()
	var err error
	if g.pinned.Load() {
		err = g.with.Check(m)
	} else {
		err = g.without.Check(m)
	}
	if g.times != nil && m.GetRunCommand() != nil {
		g.times.add(time.Since(start))
	}
	return err
}

// checkTimes collects the agents' guard checks of one fan-out.
type checkTimes struct {
	mu sync.Mutex
	d  []time.Duration
}

func (c *checkTimes) add(d time.Duration) {
	c.mu.Lock()
	c.d = append(c.d, d)
	c.mu.Unlock()
}

// take returns the checks collected since the last take, sorted.
func (c *checkTimes) take() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.d
	c.d = nil
	slices.Sort(d)
	return d
}

// BenchmarkFanOutEnvelopes1000 is issue 11's "fan-out to 1,000 agents
// with envelopes vs without, same run ≤ 1.1×": 1,000 real agents over
// TLS to a real relay run `echo` through one fan-out request, in rounds
// of three kinds, alternating:
//   - unsigned: the agents unpinned, no envelope;
//   - carried: the envelope signed over the Merkle root of the 1,000
//     device ids goes through the relay (which reads the revocation list,
//     builds the tree and attaches each agent's proof) to the same
//     unpinned agents, which do not check it: the cost of sealing, the
//     relay's side and the larger messages, without verification;
//   - signed: the same, to pinned agents, each of which verifies the
//     certificate, signature and proof and records the nonce on disk.
//
// A round's time includes sealing, as the CLI does it. ratio is signed
// ÷ unsigned; relay-ratio is carried ÷ unsigned. The agents' checks are
// timed too: their median (what one agent adds to its own request, on its
// own machine in a real fleet) and their sum per round (what the 1,000
// checks cost this host, whose 2 cores and one disk all agents share).
func BenchmarkFanOutEnvelopes1000(b *testing.B) {
	const n = 1000
	r := servertest.Start(b, servertest.Options{})
	orgPub, org, _ := ed25519.GenerateKey(rand.Reader)
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := envelope.Certify(org, &desksidev1.TechnicianCertificateBody{Technician: "admin", PublicKey: pub,
		Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER3, NotAfter: timestamppb.New(time.Now().Add(time.Hour))})
	if err != nil {
		b.Fatal(err)
	}
	pinned := &atomic.Bool{}
	times := &checkTimes{}
	log := servertest.DiscardLogger()
	ids := fleetOfAgentsWith(b, r, n, func(st *enroll.State) servertest.AgentOptions {
		if err := orgtrust.Pin(st.Dir, envelope.Fingerprint(orgPub)); err != nil {
			b.Fatal(err)
		}
		with, err := orgtrust.Open(st.Dir, st.DeviceID, log, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { with.Close() })
		without, err := orgtrust.Open(b.TempDir(), st.DeviceID, log, nil)
		if err != nil {
			b.Fatal(err)
		}
		return servertest.AgentOptions{Guard: switchGuard{pinned: pinned, with: with, without: without, times: times}}
	})
	cs, login := r.Admin(b)
	md, _ := metadata.FromOutgoingContext(login) // the session token, for a fresh deadline each round
	rc := &desksidev1.RunCommand{Command: "echo hi"}
	const (
		unsigned = iota
		carried
		signed
	)
	fanout := func(kind int) time.Duration {
		pinned.Store(kind == signed)
		ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), md), 2*time.Minute)
		defer cancel()
		start := time.Now()
		cctx := ctx
		if kind != unsigned {
			env, err := envelope.Seal(key, cert, rc, ids, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			if cctx, err = envelope.WithCall(ctx, env, ids); err != nil {
				b.Fatal(err)
			}
		}
		st, err := cs.RunCommand(cctx, &desksidev1.RunCommandRequest{Filter: &desksidev1.ListDevicesRequest{Hostname: "bench-"}, Command: rc})
		if err != nil {
			b.Fatal(err)
		}
		var sum *desksidev1.CommandSummary
		var refused string
		var end error
		for {
			m, err := st.Recv()
			if err != nil {
				end = err
				break
			}
			if s := m.GetSummary(); s != nil {
				sum = s
			}
			if x := m.GetExit(); x != nil && (x.GetExitCode() != 0 || x.GetError() != "") && refused == "" {
				refused = fmt.Sprintf("%s: %v", m.GetHostname(), x)
			}
		}
		if sum.GetSucceeded() != n {
			b.Fatalf("round kind %d: summary %v (first failure %s, stream ended with %v)", kind, sum, refused, end)
		}
		return time.Since(start)
	}
	for kind := range 3 { // warm up: connections, pools, page cache, the agents' certificate checks
		fanout(kind)
	}
	times.take()
	var rounds [3][]time.Duration
	var checks [3][]time.Duration    // every agent's check, all rounds
	var checkSums [3][]time.Duration // the sum of one round's checks
	for range max(b.N, 3) {
		for kind := range 3 {
			rounds[kind] = append(rounds[kind], fanout(kind))
			t := times.take()
			if len(t) != n {
				b.Fatalf("round kind %d: %d checks timed, want %d", kind, len(t), n)
			}
			var total time.Duration
			for _, d := range t {
				total += d
			}
			checks[kind] = append(checks[kind], t...)
			checkSums[kind] = append(checkSums[kind], total)
		}
	}
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	for kind := range 3 {
		slices.Sort(rounds[kind])
	}
	b.Logf("rounds: unsigned %v, carried (agents not verifying) %v, signed %v", rounds[unsigned], rounds[carried], rounds[signed])
	w, c, wo := median(rounds[signed]), median(rounds[carried]), median(rounds[unsigned])
	b.ReportMetric(w.Seconds(), "s/fanout-signed")
	b.ReportMetric(wo.Seconds(), "s/fanout-unsigned")
	b.ReportMetric(c.Seconds(), "s/fanout-carried")
	b.ReportMetric(w.Seconds()/wo.Seconds(), "ratio")
	b.ReportMetric(c.Seconds()/wo.Seconds(), "relay-ratio")
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(median(checks[signed])), "ms/agent-check-signed")
	b.ReportMetric(ms(median(checks[unsigned])), "ms/agent-check-unsigned")
	b.ReportMetric(median(checkSums[signed]).Seconds(), "s/checks-sum-signed")
	b.ReportMetric(median(checkSums[unsigned]).Seconds(), "s/checks-sum-unsigned")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkEnvelopeDispatchLatency is issue 11's "added dispatch latency
// from signing and verifying, p50" on the real path: console request →
// first output byte of `echo` on one real agent over TLS through a real
// relay, alternating a request sealed by the technician (the agent
// verifies it and syncs its nonce file before running it) with an
// unsigned one to the same agent unpinned. It reports both medians and
// their difference.
func BenchmarkEnvelopeDispatchLatency(b *testing.B) {
	r := servertest.Start(b, servertest.Options{})
	orgPub, org, _ := ed25519.GenerateKey(rand.Reader)
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := envelope.Certify(org, &desksidev1.TechnicianCertificateBody{Technician: "admin", PublicKey: pub,
		Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2, NotAfter: timestamppb.New(time.Now().Add(time.Hour))})
	if err != nil {
		b.Fatal(err)
	}
	pinned := &atomic.Bool{}
	log := servertest.DiscardLogger()
	ids := fleetOfAgentsWith(b, r, 1, func(st *enroll.State) servertest.AgentOptions {
		if err := orgtrust.Pin(st.Dir, envelope.Fingerprint(orgPub)); err != nil {
			b.Fatal(err)
		}
		with, err := orgtrust.Open(st.Dir, st.DeviceID, log, nil)
		if err != nil {
			b.Fatal(err)
		}
		without, err := orgtrust.Open(b.TempDir(), st.DeviceID, log, nil)
		if err != nil {
			b.Fatal(err)
		}
		return servertest.AgentOptions{Guard: switchGuard{pinned: pinned, with: with, without: without}}
	})
	cs, ctx := r.Admin(b)
	rc := &desksidev1.RunCommand{Command: "echo hi"}
	dispatch := func(signed bool) time.Duration {
		pinned.Store(signed)
		start := time.Now()
		cctx := ctx
		if signed {
			env, err := envelope.Seal(key, cert, rc, ids, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			if cctx, err = envelope.WithCall(ctx, env, ids); err != nil {
				b.Fatal(err)
			}
		}
		st, err := cs.RunCommand(cctx, &desksidev1.RunCommandRequest{DeviceId: ids[0], Command: rc})
		if err != nil {
			b.Fatal(err)
		}
		first := time.Duration(0)
		for {
			m, err := st.Recv()
			if err != nil {
				break
			}
			if m.GetOutput() != nil && first == 0 {
				first = time.Since(start)
			}
			if e := m.GetExit().GetError(); e != "" {
				b.Fatalf("signed=%v: %s", signed, e)
			}
		}
		if first == 0 {
			b.Fatalf("signed=%v: no output", signed)
		}
		return first
	}
	const runs = 200
	var with, without []time.Duration
	for range runs {
		without = append(without, dispatch(false))
		with = append(with, dispatch(true))
	}
	slices.Sort(with)
	slices.Sort(without)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(with[runs/2]), "p50-ms-signed")
	b.ReportMetric(ms(without[runs/2]), "p50-ms-unsigned")
	b.ReportMetric(ms(with[runs/2])-ms(without[runs/2]), "added-p50-ms")
	b.ReportMetric(0, "ns/op")
}
