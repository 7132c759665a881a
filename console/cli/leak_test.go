package cli_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/internal/testpoll"
)

var checkFor = testpoll.CheckFor

// clientGoroutines lists goroutines of gRPC client connections.
func clientGoroutines() error {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, marker := range []string{"transport.(*http2Client)", "grpc.(*addrConn)", "grpc.(*ccBalancerWrapper)", "grpc.(*ccResolverWrapper)"} {
			if strings.Contains(g, marker) {
				leaked = append(leaked, g)
				break
			}
		}
	}
	if len(leaked) > 0 {
		return fmt.Errorf("%d gRPC client goroutines still running, e.g.:\n%s", len(leaked), leaked[0])
	}
	return nil
}

// Every invocation closes its connection, whether it succeeds or fails.
func TestNoLeakedConnections(t *testing.T) {
	r := startRelay(t)
	c := r.cli(t)
	c.login("admin", adminPassword)
	seed(t, r)
	c.must("devices", "list")
	c.must("inventory", "export", "--format", "json")
	c.fails(1, "no device", "devices", "show", "dev-nope")
	c.fails(1, "no device", "diag", "dev-nope")
	c.fails(1, "no device", "run", "dev-nope", "--", "true")
	c.fails(1, "no device", "action", "dev-nope", "flush-dns")
	c.env["DESKSIDE_PASSWORD"] = adminPassword
	c.fails(1, "cannot reach", "login", "--relay", "127.0.0.1:1")
	c.must("logout")
	checkFor(t, 5*time.Second, 20*time.Millisecond, clientGoroutines)
}
