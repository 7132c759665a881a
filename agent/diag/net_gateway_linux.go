package diag

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Route flags (linux/route.h).
const (
	rtfUp      = 0x0001
	rtfGateway = 0x0002
	rtfReject  = 0x0200
)

// atfComplete marks a resolved entry in /proc/net/arp (ATF_COM).
const atfComplete = 0x2

// maxProcTable caps what is read of a /proc network table.
const maxProcTable = 4 << 20

// defaultGateways reads the default routes from /proc/net/route and
// /proc/net/ipv6_route, best metric first. A missing IPv6 table (IPv6
// disabled) is not an error.
func defaultGateways() ([]gateway, error) {
	b, err := readCappedFile("/proc/net/route", maxProcTable)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	gws := parseRoute4(b)
	if b6, err := readCappedFile("/proc/net/ipv6_route", maxProcTable); err == nil {
		gws = append(gws, parseRoute6(b6)...)
	}
	slices.SortStableFunc(gws, func(a, b gateway) int {
		if c := cmp.Compare(boolInt(a.addr.Is6()), boolInt(b.addr.Is6())); c != 0 {
			return c
		}
		return cmp.Compare(a.metric, b.metric)
	})
	return gws, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// parseRoute4 extracts default routes from /proc/net/route: "Iface
// Destination Gateway Flags RefCnt Use Metric Mask ...", addresses as
// host-order hex.
func parseRoute4(b []byte) []gateway {
	var out []gateway
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[0] == "Iface" {
			continue
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		gw, err2 := strconv.ParseUint(f[2], 16, 32)
		flags, err3 := strconv.ParseUint(f[3], 16, 32)
		metric, err4 := strconv.Atoi(f[6])
		mask, err5 := strconv.ParseUint(f[7], 16, 32)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil {
			continue
		}
		if dst != 0 || mask != 0 || flags&rtfUp == 0 || flags&rtfReject != 0 {
			continue
		}
		g := gateway{iface: f[0], metric: metric}
		if flags&rtfGateway != 0 {
			var a [4]byte
			binary.NativeEndian.PutUint32(a[:], uint32(gw))
			g.addr = netip.AddrFrom4(a)
		}
		out = append(out, g)
	}
	return out
}

// parseRoute6 extracts default routes from /proc/net/ipv6_route: "dest
// dest_len src src_len next_hop metric refcnt use flags iface", addresses
// as network-order hex. The kernel's catch-all reject route on lo is
// skipped.
func parseRoute6(b []byte) []gateway {
	var out []gateway
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[1] != "00" || strings.Trim(f[0], "0") != "" {
			continue
		}
		flags, err1 := strconv.ParseUint(f[8], 16, 32)
		metric, err2 := strconv.ParseUint(f[5], 16, 32)
		if err1 != nil || err2 != nil || flags&rtfUp == 0 || flags&rtfReject != 0 || f[9] == "lo" {
			continue
		}
		g := gateway{iface: f[9], metric: int(metric)}
		if flags&rtfGateway != 0 {
			raw, err := hex.DecodeString(f[4])
			if err != nil || len(raw) != 16 {
				continue
			}
			g.addr = netip.AddrFrom16([16]byte(raw))
		}
		out = append(out, g)
	}
	return out
}

// neighbour looks a gateway up in the ARP table (IPv4, /proc/net/arp) or
// the neighbour table (IPv6, a netlink dump). No entry is not an error.
func neighbour(addr netip.Addr, ifname string) (neighbourState, error) {
	if addr.Is4() {
		b, err := readCappedFile("/proc/net/arp", maxProcTable)
		if err != nil {
			return neighbourState{}, fmt.Errorf("arp table: %w", err)
		}
		return parseARP(b, addr, ifname), nil
	}
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return neighbourState{}, fmt.Errorf("neighbours: %w", err)
	}
	tab, err := syscall.NetlinkRIB(unix.RTM_GETNEIGH, unix.AF_INET6)
	if err != nil {
		return neighbourState{}, fmt.Errorf("neighbours: %w", err)
	}
	return parseNeighbours(tab, addr, int32(ifc.Index))
}

// parseARP finds addr on ifname in /proc/net/arp: "IP address  HW type
// Flags  HW address  Mask  Device".
func parseARP(b []byte, addr netip.Addr, ifname string) neighbourState {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[0] != addr.String() || f[5] != ifname {
			continue
		}
		flags, err := strconv.ParseUint(strings.TrimPrefix(f[2], "0x"), 16, 32)
		if err != nil {
			continue
		}
		if flags&atfComplete != 0 {
			return neighbourState{complete: true, state: "complete, " + f[3]}
		}
		return neighbourState{state: "incomplete"}
	}
	return neighbourState{state: "absent"}
}

// nudComplete are the neighbour states with a known link-layer address.
const nudComplete = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_NOARP | unix.NUD_PERMANENT

// parseNeighbours finds addr on interface ifindex in an RTM_GETNEIGH dump.
func parseNeighbours(tab []byte, addr netip.Addr, ifindex int32) (neighbourState, error) {
	msgs, err := syscall.ParseNetlinkMessage(tab)
	if err != nil {
		return neighbourState{}, fmt.Errorf("neighbours: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWNEIGH || len(m.Data) < unix.SizeofNdMsg {
			continue
		}
		idx := int32(binary.NativeEndian.Uint32(m.Data[4:8]))
		state := binary.NativeEndian.Uint16(m.Data[8:10])
		if idx != ifindex {
			continue
		}
		dst, ok := rtAttr(m.Data[unix.SizeofNdMsg:], unix.NDA_DST)
		if !ok {
			continue
		}
		a, ok := netip.AddrFromSlice(dst)
		if !ok || a != addr.WithZone("") {
			continue
		}
		return neighbourState{complete: state&nudComplete != 0, state: nudName(state)}, nil
	}
	return neighbourState{state: "absent"}, nil
}

// rtAttr returns the value of the first route attribute of type typ.
func rtAttr(b []byte, typ uint16) ([]byte, bool) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		t := binary.NativeEndian.Uint16(b[2:4])
		if l < 4 || l > len(b) {
			return nil, false
		}
		if t == typ {
			return b[4:l], true
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return nil, false
}

// nudName names a neighbour state as ip-neighbour(8) does.
func nudName(s uint16) string {
	names := []struct {
		bit  uint16
		name string
	}{
		{unix.NUD_INCOMPLETE, "INCOMPLETE"}, {unix.NUD_REACHABLE, "REACHABLE"},
		{unix.NUD_STALE, "STALE"}, {unix.NUD_DELAY, "DELAY"}, {unix.NUD_PROBE, "PROBE"},
		{unix.NUD_FAILED, "FAILED"}, {unix.NUD_NOARP, "NOARP"}, {unix.NUD_PERMANENT, "PERMANENT"},
	}
	var out []string
	for _, n := range names {
		if s&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "NONE"
	}
	return strings.Join(out, "|")
}
