package diag

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// iface is what network.interfaces looks at of one interface.
type iface struct {
	name     string
	up       bool // administratively up and link running
	loopback bool
	mtu      int
	addrs    []netip.Prefix
}

// usable reports whether the interface is up with an address other than
// a link-local one.
func (i iface) usable() bool {
	if !i.up {
		return false
	}
	for _, a := range i.addrs {
		if !a.Addr().IsLinkLocalUnicast() {
			return true
		}
	}
	return false
}

func checkInterfaces(_ context.Context, _ *checkEnv) *result {
	ifs, err := net.Interfaces()
	if err != nil {
		return unavailable("could not list network interfaces: " + firstLine(err.Error()))
	}
	list := make([]iface, 0, len(ifs))
	for _, n := range ifs {
		i := iface{
			name:     n.Name,
			up:       n.Flags&net.FlagUp != 0 && n.Flags&net.FlagRunning != 0,
			loopback: n.Flags&net.FlagLoopback != 0,
			mtu:      n.MTU,
		}
		if addrs, err := n.Addrs(); err == nil {
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok {
					ip, ok := netip.AddrFromSlice(ipn.IP)
					if !ok {
						continue
					}
					ones, _ := ipn.Mask.Size()
					i.addrs = append(i.addrs, netip.PrefixFrom(ip.Unmap(), ones))
				}
			}
		}
		list = append(list, i)
	}
	return evalInterfaces(list)
}

// evalInterfaces decides network.interfaces: pass when a non-loopback
// interface is up with a routable address, warn when those up have only
// link-local addresses or none, fail when none is up.
func evalInterfaces(list []iface) *result {
	r := new(result)
	var usable, upOnly []string
	for _, pass := range []bool{true, false} { // up ones first in the evidence
		for _, i := range list {
			if i.loopback || i.up != pass {
				continue
			}
			if !i.up {
				r.add(i.name, "down")
				continue
			}
			addrs := make([]string, 0, len(i.addrs))
			for _, a := range i.addrs {
				addrs = append(addrs, a.String())
			}
			if len(addrs) == 0 {
				addrs = append(addrs, "no address")
			}
			r.addf(i.name, "up, mtu %d, %s", i.mtu, strings.Join(addrs, ", "))
			if i.usable() {
				usable = append(usable, i.name)
			} else {
				upOnly = append(upOnly, i.name)
			}
		}
	}
	switch {
	case len(usable) > 0:
		return r.pass(fmt.Sprintf("%s up with an address: %s", plural(len(usable), "interface", "interfaces"), listNames(usable, 4)))
	case len(upOnly) > 0:
		return r.warn(fmt.Sprintf("%s up but without a usable address", listNames(upOnly, 4)),
			"Only link-local addresses (169.254.x.x, fe80::) or none: the network gave no address. Check the cable or Wi-Fi network, then renew DHCP (reconnect, or restart the network).")
	}
	return r.fail("no network interface is up",
		"Check the cable or that Wi-Fi is on and connected (airplane mode, hardware switch), then the network adapter's driver.")
}
