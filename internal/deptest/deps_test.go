package deptest

import (
	"slices"
	"testing"
)

const (
	agentMain = "./agent/cmd/deskside-agent"
	// The fleet simulator is agent code: it drives relays as processes
	// and over their APIs, never by linking them.
	fleetsimMain = "./agent/cmd/deskside-fleetsim"
	cliMain      = "./console/cmd/deskside"
	relaySrv     = "./relay/server"
)

// Backends the relay's server receives as interfaces; relay/service
// chooses and opens them where the process starts.
var backends = map[string]string{
	Module + "/relay/store/sqlite":   "relay/server receives a store.Store; relay/service opens the backend",
	Module + "/relay/store/postgres": "relay/server receives a store.Store; relay/service opens the backend",
	Module + "/relay/bus/natsbus":    "relay/server receives a bus.Bus; relay/service opens the backend",
	Module + "/relay/turnserver":     "relay/server receives a server.TURN; relay/service starts the TURN server",
	"github.com/jackc/pgx":           "the PostgreSQL driver belongs to relay/store/postgres",
	"modernc.org/sqlite":             "the SQLite driver belongs to relay/store/sqlite",
	"github.com/nats-io":             "the NATS client belongs to relay/bus/natsbus",
}

// Server-only code no endpoint program may link.
var serverOnly = map[string]string{
	Module + "/relay":       "relay code stays in the relay; move what both sides need to proto/wire (wire rules) or internal/ (helpers)",
	"github.com/jackc/pgx":  "the PostgreSQL driver belongs to the relay's store",
	"modernc.org/sqlite":    "the SQLite driver belongs to the relay's store",
	"github.com/nats-io":    "the NATS bus belongs to the relay",
	"github.com/prometheus": "metrics are served by the relay",
	"connectrpc.com":        "the web API layer belongs to the relay",
}

func withRules(base map[string]string, extra map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// TestDeps holds the one-way dependency rules of the programs that run on
// endpoints and technicians' machines, for every system they ship for.
func TestDeps(t *testing.T) {
	rules := map[string]map[string]string{
		agentMain: withRules(serverOnly, map[string]string{
			Module + "/console": "the agent never links the console (CLI or web)",
		}),
		fleetsimMain: withRules(serverOnly, map[string]string{
			Module + "/console": "the fleet simulator is agent-side; it talks to the console API through proto",
		}),
		cliMain: withRules(serverOnly, map[string]string{
			Module + "/agent":       "the CLI never links agent code; share through internal/ or proto/wire",
			Module + "/console/web": "the CLI does not link the web console",
		}),
	}
	for _, pkg := range []string{agentMain, cliMain, fleetsimMain} {
		for _, goos := range []string{"linux", "windows", "darwin"} {
			t.Run(pkg[2:]+"/"+goos, func(t *testing.T) {
				t.Parallel()
				Checker{Package: pkg, GOOS: goos, Forbidden: rules[pkg]}.Check(t)
			})
		}
	}
}

// TestServerTakesInterfaces keeps the relay's server free of its
// backends: a new backend is wired in relay/service, and a new domain
// (tickets, knowledge base, alerts, updates) is a package of its own.
func TestServerTakesInterfaces(t *testing.T) {
	t.Parallel()
	Checker{Package: relaySrv, GOOS: "linux", Forbidden: backends}.Check(t)
}

func TestViolations(t *testing.T) {
	c := Checker{Forbidden: map[string]string{Module + "/relay": "no relay"}}
	deps := []string{"fmt", Module + "/relayish", Module + "/relay", Module + "/relay/pki", Module + "/agent/link"}
	got := c.Violations(deps)
	want := []Violation{{Module + "/relay", "no relay"}, {Module + "/relay/pki", "no relay"}}
	if !slices.Equal(got, want) {
		t.Fatalf("Violations = %q, want %q", got, want)
	}
}
