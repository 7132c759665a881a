package fleetsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/agent/link"
	"github.com/deskside/deskside/agent/orgtrust"
	"github.com/deskside/deskside/agent/spool"
)

// simAgent is one simulated device: a real enrolled identity, a real
// on-disk spool and the real agent link, fed by a machine template.
type simAgent struct {
	index int
	m     *machine
	dir   string
	local net.IP
	relay string

	st   *enroll.State
	sp   *spool.Spool
	link *link.Link

	// connGen numbers the agent's TCP connections; welcomed is the
	// number of the last one whose stream got a Welcome.
	connGen  atomic.Uint64
	welcomed atomic.Uint64
}

// enrollAgent enrolls a with token, retrying what may pass (a busy
// relay) until deadline.
func (a *simAgent) enroll(ctx context.Context, n *network, token string, deadline time.Time) error {
	var mid [16]byte
	rand.Read(mid[:])
	wait := time.Second
	for attempt := 1; ; attempt++ {
		st, err := enroll.Enroll(ctx, enroll.Options{
			Relay: a.relay, Token: token, StateDir: a.dir, Hostname: a.m.hostname, Version: Version,
			MachineID: "fleetsim-" + hex.EncodeToString(mid[:]), Force: true, Timeout: 60 * time.Second,
			Dialer: n.dialer(a.local, nil),
		})
		if err == nil {
			a.st = st
			return nil
		}
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) || attempt >= 6 {
			return fmt.Errorf("agent %d (%s): %w", a.index, a.m.hostname, err)
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(wait*2, 15*time.Second)
	}
}

// start opens the spool and builds the link; run runs it.
func (a *simAgent) start(n *network, c *counters, o *workerConfig, log *slog.Logger) error {
	sp, err := spool.Open(filepath.Join(a.dir, "spool"), 0)
	if err != nil {
		return err
	}
	a.sp = sp
	guard := requestCounter{c: c}
	if o.OrgPin != "" {
		// The real agent's guard: envelope, certificate chain, Merkle
		// proof, and the nonce recorded (and synced) before it runs.
		if err := orgtrust.Pin(a.dir, o.OrgPin); err != nil {
			sp.Close()
			return err
		}
		if guard.next, err = orgtrust.Open(a.dir, a.st.DeviceID, log, nil); err != nil {
			sp.Close()
			return err
		}
	}
	l, err := link.New(link.Config{
		State: a.st, Spool: sp, Inventory: a.m, Health: a.m,
		Checks: simChecks{a.m, c}, Commands: simCommands{a.m, c}, Actions: simActions{c},
		Guard:          guard,
		HealthInterval: o.HealthInterval, InventoryInterval: o.InventoryInterval,
		Hostname: a.m.hostname, Version: Version, Logger: log,
		Dialer: n.dialer(a.local, a),
		OnConnected: func() {
			c.connects.Add(1)
			a.welcomed.Store(a.connGen.Load())
		},
	})
	if err != nil {
		sp.Close()
		return err
	}
	a.link = l
	return nil
}

// ackedUpTo is the id of the last sample the relay acknowledged (ids
// run from 1; samples up to it left the spool), and how many were issued.
func (a *simAgent) ackedUpTo() (acked, issued uint64) {
	if a.sp == nil {
		return 0, 0
	}
	issued = a.sp.Issued()
	waiting, err := a.sp.Peek(1)
	if err != nil || len(waiting) == 0 {
		return issued, issued
	}
	return waiting[0].GetId() - 1, issued
}

// Version is what simulated agents report as their version.
const Version = "fleetsim"
