package health

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/disk"
	"github.com/shirou/gopsutil/v3/mem"
	psnet "github.com/shirou/gopsutil/v3/net"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/inventory"
	"github.com/deskside/deskside/agent/proctab"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

const (
	// DefaultTopN is the default length of the top-process lists.
	DefaultTopN = 5
	// MaxTopN is the longest top-process list the relay accepts.
	MaxTopN = 16
	// DefaultPrimeInterval is how long the first Sample measures rates over.
	DefaultPrimeInterval = 250 * time.Millisecond
	// maxTemperatures bounds the sensors reported.
	maxTemperatures = 64
)

// Log attribute keys.
const (
	logKeyReading = "reading"
	logKeyErr     = "err"
)

// Options tune a Sampler. The zero value gives the defaults.
type Options struct {
	// TopN is the length of the top-CPU and top-memory lists: default
	// DefaultTopN, at most MaxTopN.
	TopN int
	// PrimeInterval is the measuring window of the first Sample, which
	// has no previous counters: default DefaultPrimeInterval.
	PrimeInterval time.Duration
	// IncludeMount says which mounts are reported. The default reports
	// "/" and every file system that is not a pseudo one
	// (inventory.IsPseudoFS), as the inventory does.
	IncludeMount func(mountpoint, fstype string) bool
}

// withDefaults returns o with zero or out-of-range values replaced.
func (o Options) withDefaults() Options {
	if o.TopN <= 0 {
		o.TopN = DefaultTopN
	}
	o.TopN = min(o.TopN, MaxTopN, listCap("deskside.v1.HealthSample.top_cpu"), listCap("deskside.v1.HealthSample.top_memory"))
	if o.PrimeInterval <= 0 {
		o.PrimeInterval = DefaultPrimeInterval
	}
	if o.IncludeMount == nil {
		o.IncludeMount = DefaultIncludeMount
	}
	return o
}

// DefaultIncludeMount reports "/" and every non-pseudo file system.
func DefaultIncludeMount(mountpoint, fstype string) bool {
	return mountpoint == "/" || !inventory.IsPseudoFS(fstype)
}

// Sampler takes health samples. It is safe for concurrent use; samples are
// taken one at a time.
type Sampler struct {
	logger *slog.Logger
	opts   Options

	mu     sync.Mutex
	prev   *snapshot
	procs  *procReader
	numCPU int
	// failing holds readings whose failure was logged, so a persistent
	// failure is logged once at Info and then at Debug.
	failing map[string]bool
	now     func() time.Time
}

// NewSampler returns a Sampler logging to logger (nil discards).
func NewSampler(logger *slog.Logger, opts Options) *Sampler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Sampler{
		logger:  logger,
		opts:    opts.withDefaults(),
		procs:   newProcReader(),
		failing: map[string]bool{},
		now:     time.Now,
	}
}

// snapshot holds the cumulative counters rates are computed from.
type snapshot struct {
	at      time.Time // with monotonic reading
	cpu     cpuCounters
	cpuOK   bool
	net     map[string]netCounters
	procs   map[procKey]procSample
	procsOK bool
}

type cpuCounters struct{ busy, total float64 }

type netCounters struct{ rx, tx uint64 }

// procKey identifies a process across samples: pids are reused, pid plus
// start time is not.
type procKey struct {
	pid   int32
	start uint64 // platform start time token (clock ticks, ms since epoch)
}

// procSample is one process's cumulative counters.
type procSample struct {
	cpu  time.Duration // user + system CPU time since start
	rss  uint64
	name string
}

// Sample takes one health sample. It fails only when ctx is done or when
// neither CPU nor memory can be read (ErrNoData); other readings that fail
// are left empty.
func (s *Sampler) Sample(ctx context.Context) (*desksidev1.HealthSample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.numCPU == 0 {
		s.numCPU = runtime.NumCPU()
		if n, err := cpu.CountsWithContext(ctx, true); err == nil && n > 0 {
			s.numCPU = n
		}
	}
	cur := s.snap(ctx)
	if s.prev == nil {
		t := time.NewTimer(s.opts.PrimeInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		s.prev, cur = cur, s.snap(ctx)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prev := s.prev
	s.prev = cur
	wall := cur.at.Sub(prev.at).Seconds()

	hs := &desksidev1.HealthSample{Time: timestamppb.New(s.now())}
	cpuOK := false
	if prev.cpuOK && cur.cpuOK {
		if dt := cur.cpu.total - prev.cpu.total; dt > 0 {
			hs.CpuPercent = round2(clamp(100*(cur.cpu.busy-prev.cpu.busy)/dt, 0, 100))
			cpuOK = true
		}
	}
	if l, err := loadAvg(ctx); err == nil {
		hs.Load1, hs.Load5, hs.Load15 = finite(l[0]), finite(l[1]), finite(l[2])
		s.ok("load")
	} else {
		s.fail(ctx, "load", err)
	}
	memOK := s.memory(ctx, hs)
	s.mounts(ctx, hs)
	if wall > 0 {
		hs.NetRxBytesPerSec, hs.NetTxBytesPerSec = netRates(prev.net, cur.net, wall)
		if prev.procsOK && cur.procsOK {
			s.topProcesses(hs, prev.procs, cur.procs, cur.at.Sub(prev.at))
		}
	}
	s.temperatures(ctx, hs)
	if !cpuOK && !memOK {
		return nil, ErrNoData
	}
	if err := wire.DefaultCaps.Sanitize(hs.ProtoReflect()); err != nil {
		return nil, fmt.Errorf("health: sanitize: %w", err)
	}
	return hs, nil
}

// snap reads the cumulative counters.
func (s *Sampler) snap(ctx context.Context) *snapshot {
	sn := &snapshot{at: time.Now()}
	if ts, err := cpu.TimesWithContext(ctx, false); err == nil && len(ts) > 0 {
		t := ts[0]
		// guest and guest_nice are already counted in user and nice.
		idle := t.Idle + t.Iowait
		busy := t.User + t.Nice + t.System + t.Irq + t.Softirq + t.Steal
		sn.cpu, sn.cpuOK = cpuCounters{busy: busy, total: busy + idle}, true
		s.ok("cpu")
	} else {
		if err == nil {
			err = errors.New("no CPU times")
		}
		s.fail(ctx, "cpu", err)
	}
	sn.net = s.netCounters(ctx)
	procs, err := s.procs.read(ctx)
	if err != nil {
		s.fail(ctx, "processes", err)
	} else {
		s.ok("processes")
	}
	sn.procs, sn.procsOK = procs, err == nil
	return sn
}

func (s *Sampler) memory(ctx context.Context, hs *desksidev1.HealthSample) bool {
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		s.fail(ctx, "memory", err)
		return false
	}
	s.ok("memory")
	hs.MemTotalBytes, hs.MemAvailableBytes = vm.Total, vm.Available
	// Used is what is not available: the figure that predicts trouble.
	if vm.Available <= vm.Total {
		hs.MemUsedBytes = vm.Total - vm.Available
	} else {
		hs.MemUsedBytes = min(vm.Used, vm.Total)
	}
	if sw, err := mem.SwapMemoryWithContext(ctx); err == nil {
		hs.SwapTotalBytes, hs.SwapUsedBytes = sw.Total, min(sw.Used, sw.Total)
		s.ok("swap")
	} else {
		s.fail(ctx, "swap", err)
	}
	return true
}

// mounts reports the fill level of every included mount, sorted by
// mountpoint; over-mounted paths are reported once.
func (s *Sampler) mounts(ctx context.Context, hs *desksidev1.HealthSample) {
	parts, err := disk.PartitionsWithContext(ctx, true)
	if err != nil && len(parts) == 0 {
		s.fail(ctx, "mounts", err)
		return
	}
	s.ok("mounts")
	seen := make(map[string]int, len(parts))
	var out []*desksidev1.MountUsage
	for _, p := range parts {
		if p.Mountpoint == "" || !s.opts.IncludeMount(p.Mountpoint, p.Fstype) {
			continue
		}
		u, err := disk.UsageWithContext(ctx, p.Mountpoint)
		if err != nil {
			continue // unreadable mount (permissions, no media)
		}
		m := &desksidev1.MountUsage{
			Mountpoint:  p.Mountpoint,
			UsedPercent: round2(clamp(finite(u.UsedPercent), 0, 100)),
			FreeBytes:   u.Free,
			TotalBytes:  u.Total,
		}
		if i, ok := seen[p.Mountpoint]; ok {
			out[i] = m // later mounts hide earlier ones
			continue
		}
		seen[p.Mountpoint] = len(out)
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *desksidev1.MountUsage) int { return cmp.Compare(a.Mountpoint, b.Mountpoint) })
	if n := listCap("deskside.v1.HealthSample.mounts"); len(out) > n {
		out = out[:n]
	}
	hs.Mounts = out
}

// netCounters reads byte counters of the non-loopback interfaces.
func (s *Sampler) netCounters(ctx context.Context) map[string]netCounters {
	ifs, err := net.Interfaces()
	if err != nil {
		s.fail(ctx, "network", err)
		return nil
	}
	loopback := map[string]bool{}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			loopback[i.Name] = true
		}
	}
	cs, err := psnet.IOCountersWithContext(ctx, true)
	if err != nil {
		s.fail(ctx, "network", err)
		return nil
	}
	s.ok("network")
	out := make(map[string]netCounters, len(cs))
	for _, c := range cs {
		if !loopback[c.Name] {
			out[c.Name] = netCounters{rx: c.BytesRecv, tx: c.BytesSent}
		}
	}
	return out
}

// netRates sums per-interface deltas. Interfaces that appeared, vanished
// or whose counters went backwards (reset) contribute nothing.
func netRates(prev, cur map[string]netCounters, wall float64) (rx, tx float64) {
	var drx, dtx uint64
	for name, c := range cur {
		p, ok := prev[name]
		if !ok || c.rx < p.rx || c.tx < p.tx {
			continue
		}
		drx += c.rx - p.rx
		dtx += c.tx - p.tx
	}
	return round2(float64(drx) / wall), round2(float64(dtx) / wall)
}

// topProcesses fills the top-CPU and top-memory lists. A process's CPU is
// a percent of one core (proctab.CPUPercent), at most 100 per logical CPU.
func (s *Sampler) topProcesses(hs *desksidev1.HealthSample, prev, cur map[procKey]procSample, wall time.Duration) {
	type row struct {
		key procKey
		cpu float64
		p   procSample
	}
	rows := make([]row, 0, len(cur))
	ceiling := 100 * float64(max(s.numCPU, 1))
	for k, p := range cur {
		var before time.Duration // a process started since the previous sample: all its time is new
		if q, ok := prev[k]; ok {
			before = min(q.cpu, p.cpu)
		}
		rows = append(rows, row{key: k, cpu: clamp(proctab.CPUPercent(before, p.cpu, wall), 0, ceiling), p: p})
	}
	details := map[procKey]*desksidev1.ProcessUsage{}
	usage := func(r row) *desksidev1.ProcessUsage {
		if u, ok := details[r.key]; ok {
			return u
		}
		name, user := s.procs.details(r.key, r.p)
		u := &desksidev1.ProcessUsage{Pid: r.key.pid, Name: name, User: user, CpuPercent: round2(r.cpu), RssBytes: r.p.rss}
		details[r.key] = u
		return u
	}
	n := s.opts.TopN
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(b.cpu, a.cpu), cmp.Compare(b.p.rss, a.p.rss), cmp.Compare(a.key.pid, b.key.pid), cmp.Compare(a.key.start, b.key.start))
	})
	for _, r := range rows {
		if len(hs.TopCpu) == n || round2(r.cpu) <= 0 {
			break
		}
		hs.TopCpu = append(hs.TopCpu, usage(r))
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(b.p.rss, a.p.rss), cmp.Compare(b.cpu, a.cpu), cmp.Compare(a.key.pid, b.key.pid), cmp.Compare(a.key.start, b.key.start))
	})
	for _, r := range rows {
		if len(hs.TopMemory) == n || r.p.rss == 0 {
			break
		}
		hs.TopMemory = append(hs.TopMemory, usage(r))
	}
	s.procs.forget(cur)
}

func (s *Sampler) temperatures(ctx context.Context, hs *desksidev1.HealthSample) {
	ts, err := readTemperatures(ctx)
	if err != nil {
		s.fail(ctx, "temperatures", err)
	} else {
		s.ok("temperatures")
	}
	seen := map[string]bool{}
	for _, t := range ts {
		if t.Sensor == "" || seen[t.Sensor] || math.IsNaN(t.Celsius) || t.Celsius < -100 || t.Celsius > 250 {
			continue
		}
		seen[t.Sensor] = true
		t.Celsius = math.Round(t.Celsius*10) / 10
		hs.Temperatures = append(hs.Temperatures, t)
	}
	slices.SortFunc(hs.Temperatures, func(a, b *desksidev1.Temperature) int { return cmp.Compare(a.Sensor, b.Sensor) })
	if len(hs.Temperatures) > maxTemperatures {
		hs.Temperatures = hs.Temperatures[:maxTemperatures]
	}
}

// fail logs a failed reading: once at Info (Debug when unsupported), then
// at Debug until it succeeds again.
func (s *Sampler) fail(ctx context.Context, reading string, err error) {
	if ctx.Err() != nil {
		return // the caller returns ctx.Err(); nothing to report
	}
	level := slog.LevelDebug
	if !s.failing[reading] && !errors.Is(err, ErrNotSupported) {
		level = slog.LevelInfo
	}
	s.failing[reading] = true
	s.logger.LogAttrs(ctx, level, "health reading unavailable", slog.String(logKeyReading, reading), slog.Any(logKeyErr, err))
}

func (s *Sampler) ok(reading string) {
	delete(s.failing, reading)
}

func listCap(field protoreflect.FullName) int {
	if n, ok := wire.DefaultCaps.Lists[field]; ok {
		return n
	}
	return wire.DefaultCaps.DefaultList
}

func clamp(v, lo, hi float64) float64 {
	return math.Max(lo, math.Min(hi, finite(v)))
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func round2(v float64) float64 {
	return math.Round(v*100) / 100
}
