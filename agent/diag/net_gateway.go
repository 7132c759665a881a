package diag

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// gatewayProbeTimeout bounds each TCP probe of a gateway.
const gatewayProbeTimeout = time.Second

// gatewayProbePorts are tried on a gateway: DNS and HTTP, which home
// routers usually serve. A refusal proves the gateway answered as well as
// an acceptance does.
var gatewayProbePorts = []string{"53", "80"}

// gateway is one default route.
type gateway struct {
	addr   netip.Addr // invalid for an on-link default route (no next hop)
	iface  string
	metric int
}

func (g gateway) String() string {
	if !g.addr.IsValid() {
		return "on-link via " + g.iface
	}
	return g.addr.String() + " via " + g.iface
}

// neighbourState is a gateway's entry in the ARP / neighbour table.
type neighbourState struct {
	complete bool   // the link-layer address is known
	state    string // as the kernel names it, for evidence
}

func checkGateway(ctx context.Context, e *checkEnv) *result {
	gws, err := defaultGateways()
	if err != nil {
		return new(result).fromError("could not read the routing table", err)
	}
	ctx, cancel := e.early(ctx)
	defer cancel()
	r := new(result)
	if len(gws) == 0 {
		return r.fail("no default gateway: this machine has no route off its local network",
			"Renew DHCP (reconnect to the network) or check the gateway in the network settings; a VPN client may also have removed the route.")
	}
	type outcome struct {
		gw     gateway
		ok     bool
		detail string
	}
	outs := make([]outcome, len(gws))
	var wg sync.WaitGroup
	for i, g := range gws {
		wg.Go(func() {
			ok, detail := probeGateway(ctx, g)
			outs[i] = outcome{g, ok, detail}
		})
	}
	wg.Wait()
	var down []string
	answered := 0
	for _, o := range outs {
		key := "gateway " + o.gw.String()
		if o.gw.metric != 0 {
			key += " metric " + strconv.Itoa(o.gw.metric)
		}
		r.add(key, o.detail)
		if o.ok {
			answered++
		} else {
			down = append(down, o.gw.addr.String())
		}
	}
	switch {
	case answered == len(outs):
		return r.pass(fmt.Sprintf("default %s %s", plural(len(outs), "gateway answers:", "gateways answer:"), gwList(gws)))
	case answered > 0:
		return r.warn(fmt.Sprintf("gateway %s does not answer (another one does)", listNames(down, 3)),
			"One default route leads nowhere; usually harmless while the other works, but some connections may stall. Check the router's IPv6 / secondary setup.")
	}
	return r.fail(fmt.Sprintf("default gateway %s does not answer", listNames(down, 3)),
		"The router is unreachable: check the cable or Wi-Fi, that the router is powered on, then renew DHCP.")
}

func gwList(gws []gateway) string {
	s := make([]string, len(gws))
	for i, g := range gws {
		s[i] = g.String()
	}
	return listNames(s, 3)
}

// probeGateway decides whether a gateway answers: its neighbour entry is
// complete, or a TCP connection to it is accepted or refused. A failed
// TCP attempt still makes the kernel resolve the neighbour, so the entry
// is read again after the probes.
func probeGateway(ctx context.Context, g gateway) (bool, string) {
	if !g.addr.IsValid() {
		return true, "on-link default route (point-to-point or VPN): no next hop to probe"
	}
	n, nerr := neighbour(g.addr, g.iface)
	if nerr == nil && n.complete {
		return true, "answers (neighbour entry " + n.state + ")"
	}
	ok, how := probeTCP(ctx, g)
	if ok {
		return true, "answers (" + how + ")"
	}
	if ctx.Err() != nil {
		return false, "not probed: out of time"
	}
	if n2, err := neighbour(g.addr, g.iface); err == nil {
		if n2.complete {
			return true, "answers (neighbour entry " + n2.state + " after probing)"
		}
		n, nerr = n2, nil
	}
	detail := "does not answer: " + how
	switch {
	case nerr != nil && !errors.Is(nerr, ErrNotSupported):
		detail += "; neighbour table: " + firstLine(nerr.Error())
	case n.state != "":
		detail += "; neighbour entry " + n.state
	}
	return false, detail
}

// probeTCP connects to the gateway's probe ports at once; the first that
// answers (accepts or refuses) wins.
func probeTCP(ctx context.Context, g gateway) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, gatewayProbeTimeout)
	defer cancel()
	host := g.addr.String()
	if g.addr.Is6() && g.addr.IsLinkLocalUnicast() {
		host = g.addr.WithZone(g.iface).String()
	}
	type answer struct {
		port string
		err  error
	}
	ch := make(chan answer, len(gatewayProbePorts))
	for _, port := range gatewayProbePorts {
		go func() {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
			if err == nil {
				c.Close()
			}
			ch <- answer{port, err}
		}()
	}
	var last error
	for range gatewayProbePorts {
		a := <-ch
		switch {
		case a.err == nil:
			return true, "TCP port " + a.port + " accepted"
		case isConnRefused(a.err):
			return true, "TCP port " + a.port + " refused"
		}
		last = a.err
	}
	if errors.Is(last, context.DeadlineExceeded) || isTimeout(last) {
		return false, "TCP ports " + gatewayProbePortsText() + " timed out after " + fmtDur(gatewayProbeTimeout)
	}
	return false, firstLine(last.Error())
}

func gatewayProbePortsText() string { return listNames(gatewayProbePorts, 4) }

// isTimeout reports a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
