package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

// Reader collects an inventory. The agent depends on it; tests substitute
// fakes.
type Reader interface {
	Read(ctx context.Context) (*desksidev1.Inventory, error)
}

var _ Reader = (*Collector)(nil)

// Section names, as reported in desksidev1.CollectorError.section.
const (
	SectionHostname   = "hostname"
	SectionOS         = "os"
	SectionBootTime   = "boot_time"
	SectionCPU        = "cpu"
	SectionMemory     = "memory"
	SectionPartitions = "partitions"
	SectionDisks      = "disks"
	SectionNICs       = "nics"
	SectionDMI        = "dmi" // system and bios
	SectionUsers      = "users"
	SectionSoftware   = "software"
	SectionGPUs       = "gpus"
	SectionBatteries  = "batteries"
	// SectionLimits reports repeated fields truncated to the wire caps.
	SectionLimits = "limits"
)

// Log attribute keys.
const (
	logKeySection  = "section"
	logKeyErr      = "err"
	logKeyDuration = "duration"
)

// Collector reads the inventory of the machine it runs on. The zero value
// is usable; New sets the logger. A Collector is safe for concurrent use.
type Collector struct {
	// Logger receives one debug line per unavailable section. Nil discards.
	Logger *slog.Logger

	// now is the clock; nil means time.Now.
	now func() time.Time
}

// New returns a Collector that logs to logger (nil discards).
func New(logger *slog.Logger) *Collector {
	return &Collector{Logger: logger}
}

func (c *Collector) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (c *Collector) clock() time.Time {
	if c.now == nil {
		return time.Now()
	}
	return c.now()
}

// section is one independently failing part of a collection. read fills
// what it can into inv and returns why the rest is missing.
type section struct {
	name string
	core bool
	read func(ctx context.Context, inv *desksidev1.Inventory) error
}

var sections = []section{
	{SectionHostname, true, readHostname},
	{SectionOS, true, readOS},
	{SectionBootTime, false, readBootTime},
	{SectionCPU, true, readCPU},
	{SectionMemory, true, readMemory},
	{SectionPartitions, false, readPartitions},
	{SectionDisks, false, func(ctx context.Context, inv *desksidev1.Inventory) (err error) {
		inv.Disks, err = readDisks(ctx)
		return err
	}},
	{SectionNICs, false, readNICs},
	{SectionDMI, false, func(ctx context.Context, inv *desksidev1.Inventory) (err error) {
		inv.System, inv.Bios, err = readDMI(ctx)
		return err
	}},
	{SectionUsers, false, func(ctx context.Context, inv *desksidev1.Inventory) (err error) {
		inv.Users, err = readUsers(ctx)
		return err
	}},
	{SectionSoftware, false, func(ctx context.Context, inv *desksidev1.Inventory) (err error) {
		inv.Software, err = readSoftware(ctx)
		return err
	}},
	{SectionGPUs, false, func(ctx context.Context, inv *desksidev1.Inventory) (err error) {
		inv.Gpus, err = readGPUs(ctx)
		return err
	}},
	{SectionBatteries, false, func(ctx context.Context, inv *desksidev1.Inventory) (err error) {
		inv.Batteries, err = readBatteries(ctx)
		return err
	}},
}

// Read collects the inventory. Sections that cannot be read are listed in
// the result's errors. Read fails only when ctx is done or when no core
// section (hostname, OS, CPU, memory) could be read (ErrNothingCollected).
func (c *Collector) Read(ctx context.Context) (*desksidev1.Inventory, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	log := c.logger()
	inv := &desksidev1.Inventory{}
	var coreErrs []error
	coreOK := false
	for _, s := range sections {
		err := s.read(ctx, inv)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if err == nil {
			coreOK = coreOK || s.core
			continue
		}
		if s.core {
			coreErrs = append(coreErrs, fmt.Errorf("%s: %w", s.name, err))
		}
		level := slog.LevelDebug
		if !errors.Is(err, ErrNotSupported) {
			level = slog.LevelInfo
		}
		log.LogAttrs(ctx, level, "inventory section unavailable",
			slog.String(logKeySection, s.name), slog.Any(logKeyErr, err))
		inv.Errors = append(inv.Errors, &desksidev1.CollectorError{Section: s.name, Message: clean(err.Error())})
	}
	if !coreOK {
		return nil, fmt.Errorf("%w: %w", ErrNothingCollected, errors.Join(coreErrs...))
	}
	for _, f := range truncateLists(inv.ProtoReflect(), wire.DefaultCaps) {
		inv.Errors = append(inv.Errors, &desksidev1.CollectorError{Section: SectionLimits, Message: f})
	}
	// Belt and braces: the same string rules the relay applies, so what is
	// sent is exactly what is stored.
	if err := wire.DefaultCaps.Sanitize(inv.ProtoReflect()); err != nil {
		return nil, fmt.Errorf("inventory: sanitize: %w", err)
	}
	inv.CollectedAt = timestamppb.New(c.clock())
	log.LogAttrs(ctx, slog.LevelDebug, "inventory collected",
		slog.Duration(logKeyDuration, time.Since(start)), slog.Int("errors", len(inv.Errors)))
	return inv, nil
}

// truncateLists cuts every repeated field of m (recursively) down to its
// cap in caps, so the relay does not refuse the report, and describes each
// cut. Lists are sorted before this, so the cut is deterministic.
func truncateLists(m protoreflect.Message, caps wire.Caps) []string {
	var cuts []string
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.IsList() {
			l := v.List()
			limit := caps.DefaultList
			if n, ok := caps.Lists[fd.FullName()]; ok {
				limit = n
			}
			if l.Len() > limit {
				cuts = append(cuts, fmt.Sprintf("%s: %d entries, truncated to %d", fd.FullName(), l.Len(), limit))
				l.Truncate(limit)
			}
			if fd.Message() != nil {
				for i := 0; i < l.Len(); i++ {
					cuts = append(cuts, truncateLists(l.Get(i).Message(), caps)...)
				}
			}
			return true
		}
		if fd.Message() != nil && !fd.IsMap() {
			cuts = append(cuts, truncateLists(v.Message(), caps)...)
		}
		return true
	})
	return cuts
}
