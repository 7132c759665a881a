package deptest

import (
	"slices"
	"testing"
)

const (
	agentMain = "./agent/cmd/deskside-agent"
	cliMain   = "./console/cmd/deskside"
)

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
		cliMain: withRules(serverOnly, map[string]string{
			Module + "/agent":       "the CLI never links agent code; share through internal/ or proto/wire",
			Module + "/console/web": "the CLI does not link the web console",
		}),
	}
	for _, pkg := range []string{agentMain, cliMain} {
		for _, goos := range []string{"linux", "windows", "darwin"} {
			t.Run(pkg[2:]+"/"+goos, func(t *testing.T) {
				t.Parallel()
				Checker{Package: pkg, GOOS: goos, Forbidden: rules[pkg]}.Check(t)
			})
		}
	}
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
