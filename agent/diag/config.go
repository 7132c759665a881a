package diag

import (
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

// Defaults of CheckConfig (documented in diag.proto).
const (
	DefaultDiskWarnPercent   = 85
	DefaultDiskFailPercent   = 95
	DefaultInodeWarnPercent  = 85
	DefaultInodeFailPercent  = 95
	DefaultMemoryWarnPercent = 90
	DefaultMemoryFailPercent = 97
	DefaultSwapWarnPercent   = 50
	DefaultLoadWarnPerCore   = 1.5
	DefaultLoadFailPerCore   = 3
	DefaultCPUHogPercent     = 90
	DefaultUpdatesWarn       = 1
	DefaultTimeOffsetWarn    = time.Second
	DefaultUptimeWarn        = 30 * 24 * time.Hour

	// maxDNSServers bounds the resolvers one request may name.
	maxDNSServers = 8
)

// config is a CheckConfig with defaults applied and values checked.
type config struct {
	dnsName    string
	dnsServers []string // host:port, validated
	badServers []string // as given, for evidence
	httpsURL   string

	diskWarn, diskFail   float64
	inodeWarn, inodeFail float64
	memWarn, memFail     float64
	swapWarn             float64
	loadWarn, loadFail   float64
	hogPercent           float64
	updatesWarn          uint32
	timeOffsetWarn       time.Duration
	uptimeWarn           time.Duration
}

// newConfig applies defaults to c (nil is all defaults). Values that make
// no sense (NaN, infinite or negative thresholds, unparsable resolvers)
// are replaced by their default and logged with the field's name; a bad
// setting from the relay should not cost the technician the whole triage.
func newConfig(c *desksidev1.CheckConfig, o Options, logger *slog.Logger) config {
	bad := func(field string, v any) {
		logger.Warn("invalid check setting, using the default", logKeyField, field, "value", v)
	}
	pct := func(field string, v, def float64) float64 {
		switch {
		case v == 0:
			return def
		case math.IsNaN(v) || math.IsInf(v, 0) || v < 0:
			bad(field, v)
			return def
		}
		return v
	}
	dur := func(field string, d *durationpb.Duration, def time.Duration) time.Duration {
		if d == nil {
			return def
		}
		if d.CheckValid() != nil || d.AsDuration() <= 0 {
			if d.AsDuration() != 0 {
				bad(field, d.AsDuration())
			}
			return def
		}
		return d.AsDuration()
	}
	cfg := config{
		dnsName:        strings.TrimSpace(c.GetDnsName()),
		httpsURL:       strings.TrimSpace(c.GetHttpsUrl()),
		diskWarn:       pct("disk_warn_percent", c.GetDiskWarnPercent(), DefaultDiskWarnPercent),
		diskFail:       pct("disk_fail_percent", c.GetDiskFailPercent(), DefaultDiskFailPercent),
		inodeWarn:      pct("inode_warn_percent", c.GetInodeWarnPercent(), DefaultInodeWarnPercent),
		inodeFail:      pct("inode_fail_percent", c.GetInodeFailPercent(), DefaultInodeFailPercent),
		memWarn:        pct("memory_warn_percent", c.GetMemoryWarnPercent(), DefaultMemoryWarnPercent),
		memFail:        pct("memory_fail_percent", c.GetMemoryFailPercent(), DefaultMemoryFailPercent),
		swapWarn:       pct("swap_warn_percent", c.GetSwapWarnPercent(), DefaultSwapWarnPercent),
		loadWarn:       pct("load_warn_per_core", c.GetLoadWarnPerCore(), DefaultLoadWarnPerCore),
		loadFail:       pct("load_fail_per_core", c.GetLoadFailPerCore(), DefaultLoadFailPerCore),
		hogPercent:     pct("cpu_hog_percent", c.GetCpuHogPercent(), DefaultCPUHogPercent),
		updatesWarn:    c.GetUpdatesWarn(),
		timeOffsetWarn: dur("time_offset_warn", c.GetTimeOffsetWarn(), DefaultTimeOffsetWarn),
		uptimeWarn:     dur("uptime_warn", c.GetUptimeWarn(), DefaultUptimeWarn),
	}
	if cfg.updatesWarn == 0 {
		cfg.updatesWarn = DefaultUpdatesWarn
	}
	if cfg.dnsName == "" {
		cfg.dnsName = o.relayName()
	}
	if cfg.dnsName == "" {
		cfg.dnsName = "localhost"
	}
	if cfg.httpsURL == "" && o.RelayHost != "" {
		cfg.httpsURL = "https://" + o.RelayHost + "/"
	}
	for i, s := range c.GetDnsServers() {
		if i == maxDNSServers {
			bad("dns_servers", "more than 8; the rest are ignored")
			break
		}
		if hp, ok := resolverAddr(s); ok {
			cfg.dnsServers = append(cfg.dnsServers, hp)
		} else {
			bad("dns_servers", s)
			cfg.badServers = append(cfg.badServers, wire.CleanString(s, maxValueRunes))
		}
	}
	return cfg
}

// resolverAddr normalises a resolver address, "ip" or "ip:port" (port 53
// by default), to ip:port.
func resolverAddr(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.String(), ap.Port() != 0
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return net.JoinHostPort(a.String(), "53"), true
	}
	return "", false
}
