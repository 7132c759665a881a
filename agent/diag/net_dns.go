package diag

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// dnsLookupTimeout bounds one resolution.
	dnsLookupTimeout = 3 * time.Second
	// dnsSlow is the latency above which an answer warns.
	dnsSlow = time.Second
	// maxDNSAddrs bounds the addresses listed per answer.
	maxDNSAddrs = 8
)

// dnsAnswer is the outcome of resolving the name with one resolver.
type dnsAnswer struct {
	server  string // "" for the system resolver
	addrs   []netip.Addr
	queried []string // servers the Go resolver actually sent queries to
	latency time.Duration
	err     error
}

func checkDNS(ctx context.Context, e *checkEnv) *result {
	ctx, cancel := e.early(ctx)
	defer cancel()
	name := e.cfg.dnsName
	r := new(result)
	r.add("name", name)
	var answers []dnsAnswer
	if len(e.cfg.dnsServers) == 0 && len(e.cfg.badServers) == 0 {
		sys := "system"
		if ns, err := systemNameservers(); err == nil && len(ns) > 0 {
			sys += " (" + listNames(ns, 4) + " from " + resolvConfPath + ")"
		}
		r.add("resolver", sys)
		answers = []dnsAnswer{resolve(ctx, name, "")}
	} else {
		answers = make([]dnsAnswer, len(e.cfg.dnsServers))
		var wg sync.WaitGroup
		for i, s := range e.cfg.dnsServers {
			wg.Go(func() { answers[i] = resolve(ctx, name, s) })
		}
		wg.Wait()
		for _, s := range e.cfg.badServers {
			answers = append(answers, dnsAnswer{server: s, err: errors.New("not an IP address with an optional port")})
		}
	}
	return evalDNS(r, name, answers)
}

// resolve looks name up, with the system resolver when server is empty,
// else with the Go resolver sending every query to server.
func resolve(ctx context.Context, name, server string) dnsAnswer {
	ctx, cancel := context.WithTimeout(ctx, dnsLookupTimeout)
	defer cancel()
	a := dnsAnswer{server: server}
	var mu sync.Mutex
	res := &net.Resolver{
		PreferGo: server != "",
		// Used by the Go resolver only (the cgo one and the Windows and
		// macOS system ones ignore it): records, and redirects, queries.
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			if server != "" {
				address = server
			}
			mu.Lock()
			if !slices.Contains(a.queried, address) {
				a.queried = append(a.queried, address)
			}
			mu.Unlock()
			var d net.Dialer
			return d.DialContext(ctx, network, address)
		},
	}
	start := time.Now()
	addrs, err := res.LookupNetIP(ctx, "ip", name)
	a.latency = time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	a.queried = slices.Clone(a.queried)
	for _, ad := range addrs {
		a.addrs = append(a.addrs, ad.Unmap())
	}
	a.err = err
	return a
}

// evalDNS decides network.dns: every resolver answering in time passes,
// a slow one warns, some failing warns, all failing fails.
func evalDNS(r *result, name string, answers []dnsAnswer) *result {
	var failed, slow []string
	var hint string
	var reason string
	for _, a := range answers {
		label := "system resolver"
		key := "answer"
		if a.server != "" {
			label = "DNS server " + a.server
			key = "server " + a.server
		}
		if a.err != nil {
			why, h := dnsFailure(a.err)
			r.add(key, "failed after "+fmtDur(a.latency)+": "+why)
			failed = append(failed, label)
			if reason == "" {
				reason, hint = why, h
			}
			continue
		}
		addrs := make([]string, 0, len(a.addrs))
		for i, ad := range a.addrs {
			if i == maxDNSAddrs {
				addrs = append(addrs, fmt.Sprintf("and %d more", len(a.addrs)-i))
				break
			}
			addrs = append(addrs, ad.String())
		}
		r.add(key, strings.Join(addrs, ", ")+" in "+fmtDur(a.latency))
		switch {
		case len(a.queried) > 0:
			r.add("queried", strings.Join(a.queried, ", "))
		case a.server != "":
			r.add("queried", "none: answered from the hosts file, "+a.server+" was not asked")
		default:
			r.add("queried", "none by the agent: hosts file, or the system's resolver service")
		}
		if a.latency > dnsSlow {
			slow = append(slow, label)
		}
	}
	switch {
	case len(failed) == len(answers):
		return r.fail(fmt.Sprintf("%s cannot resolve %s: %s", listNames(failed, 3), name, reason), hint)
	case len(failed) > 0:
		return r.warn(fmt.Sprintf("%s cannot resolve %s: %s (others can)", listNames(failed, 3), name, reason), hint)
	case len(slow) > 0:
		return r.warn(fmt.Sprintf("%s slow to resolve %s (over %v)", listNames(slow, 3), name, dnsSlow),
			"A slow resolver makes every connection slow to start: check the DNS servers configured (DHCP, VPN) and their reachability.")
	}
	return r.pass("resolves " + name)
}

// dnsFailure explains a resolution error in a technician's words. The
// text of the error itself is not used: with redirected queries it names
// the system's server, not the one asked.
func dnsFailure(err error) (why, hint string) {
	var de *net.DNSError
	isDNS := errors.As(err, &de)
	switch {
	case isDNS && de.IsNotFound:
		return "the name does not exist",
			"Check the name is spelled right (the relay address in the agent's settings). If other names resolve, the DNS zone lacks this record, or it needs the company VPN / split DNS."
	case isConnRefused(err) || isDNS && strings.Contains(de.Err, "connection refused"):
		return "connection refused (nothing answers DNS there)",
			"The DNS server is down or not a DNS server: check the DNS servers in the network settings (DHCP, VPN) and that the resolver service runs."
	case isTimeout(err) || errors.Is(err, context.DeadlineExceeded) || isDNS && de.IsTimeout:
		return "no answer in time",
			"The DNS server cannot be reached: check network.gateway, then a firewall or VPN blocking port 53."
	case isDNS && de.IsTemporary:
		return "server failure (" + de.Err + ")",
			"The DNS server could not answer (SERVFAIL): try again; if it persists the server or its upstream is broken."
	case isDNS:
		return de.Err, "Check the DNS servers in the network settings."
	}
	return firstLine(err.Error()), "Check the DNS servers in the network settings."
}
