package wire

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/reflect/protoreflect"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// Health reports are the message a relay receives most (one per agent
// every 15 s), and the reflective walk costs more than decoding them, so
// Sanitize checks a HealthReport field by field without reflection. It
// does exactly what the walk does, with the same caps and the same
// errors; TestSanitizeHealthMatchesWalk holds the two together for every
// field the walk would check, so a string, float or list added to these
// messages fails that test until it is handled here.

// healthCaps are the caps the HealthReport path applies, taken from the
// Caps it was planned for.
type healthCaps struct {
	samples, mounts, topCPU, topMemory, temperatures int // entries
	mountpoint, procName, procUser, sensor           int // runes
}

var (
	healthReportDesc = (&desksidev1.HealthReport{}).ProtoReflect().Descriptor()
	healthSampleDesc = (&desksidev1.HealthSample{}).ProtoReflect().Descriptor()
	mountUsageDesc   = (&desksidev1.MountUsage{}).ProtoReflect().Descriptor()
	processDesc      = (&desksidev1.ProcessUsage{}).ProtoReflect().Descriptor()
	temperatureDesc  = (&desksidev1.Temperature{}).ProtoReflect().Descriptor()
)

func (c Caps) healthCaps() *healthCaps {
	list := func(md protoreflect.MessageDescriptor, name protoreflect.Name) int {
		return c.listCap(md.Fields().ByName(name))
	}
	str := func(md protoreflect.MessageDescriptor, name protoreflect.Name) int {
		return c.stringCap(md.Fields().ByName(name))
	}
	return &healthCaps{
		samples:      list(healthReportDesc, "samples"),
		mounts:       list(healthSampleDesc, "mounts"),
		topCPU:       list(healthSampleDesc, "top_cpu"),
		topMemory:    list(healthSampleDesc, "top_memory"),
		temperatures: list(healthSampleDesc, "temperatures"),
		mountpoint:   str(mountUsageDesc, "mountpoint"),
		procName:     str(processDesc, "name"),
		procUser:     str(processDesc, "user"),
		sensor:       str(temperatureDesc, "sensor"),
	}
}

// push and pop keep the walker's path for error messages; index sets the
// list index of the innermost field.
func (w *walker) push(name protoreflect.Name) {
	w.path = append(w.path, pathElem{name: name, index: -1})
}
func (w *walker) pop()        { w.path = w.path[:len(w.path)-1] }
func (w *walker) index(i int) { w.path[len(w.path)-1].index = i }

// count checks a list's length against its cap, as the walk does.
func (w *walker) count(name protoreflect.Name, n, limit int) error {
	if n > limit {
		w.push(name)
		return fmt.Errorf("%w: %s has %d entries, limit %d", ErrTooLarge, w.at(), n, limit)
	}
	return nil
}

// finite checks a float field, as the walk does.
func (w *walker) finite(name protoreflect.Name, x float64) error {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		w.push(name)
		return fmt.Errorf("%w: %s is not a finite number", ErrInvalid, w.at())
	}
	return nil
}

func (w *walker) health(r *desksidev1.HealthReport, hc *healthCaps) error {
	if err := w.count("samples", len(r.Samples), hc.samples); err != nil {
		return err
	}
	w.push("samples")
	for i, s := range r.Samples {
		w.index(i)
		if err := w.healthSample(s, hc); err != nil {
			return err
		}
	}
	w.pop()
	return nil
}

func (w *walker) healthSample(s *desksidev1.HealthSample, hc *healthCaps) error {
	if s == nil {
		return nil
	}
	for _, f := range [...]struct {
		name protoreflect.Name
		v    float64
	}{{"cpu_percent", s.CpuPercent}, {"load1", s.Load1}, {"load5", s.Load5}, {"load15", s.Load15}} {
		if err := w.finite(f.name, f.v); err != nil {
			return err
		}
	}
	if err := w.count("mounts", len(s.Mounts), hc.mounts); err != nil {
		return err
	}
	w.push("mounts")
	for i, m := range s.Mounts {
		w.index(i)
		if m == nil {
			continue
		}
		m.Mountpoint = CleanString(m.Mountpoint, hc.mountpoint)
		if err := w.finite("used_percent", m.UsedPercent); err != nil {
			return err
		}
	}
	w.pop()
	if err := w.finite("net_rx_bytes_per_sec", s.NetRxBytesPerSec); err != nil {
		return err
	}
	if err := w.finite("net_tx_bytes_per_sec", s.NetTxBytesPerSec); err != nil {
		return err
	}
	for _, l := range [...]struct {
		name  protoreflect.Name
		procs []*desksidev1.ProcessUsage
		limit int
	}{{"top_cpu", s.TopCpu, hc.topCPU}, {"top_memory", s.TopMemory, hc.topMemory}} {
		if err := w.count(l.name, len(l.procs), l.limit); err != nil {
			return err
		}
		w.push(l.name)
		for i, p := range l.procs {
			w.index(i)
			if p == nil {
				continue
			}
			p.Name = CleanString(p.Name, hc.procName)
			p.User = CleanString(p.User, hc.procUser)
			if err := w.finite("cpu_percent", p.CpuPercent); err != nil {
				return err
			}
		}
		w.pop()
	}
	if err := w.count("temperatures", len(s.Temperatures), hc.temperatures); err != nil {
		return err
	}
	w.push("temperatures")
	for i, t := range s.Temperatures {
		w.index(i)
		if t == nil {
			continue
		}
		t.Sensor = CleanString(t.Sensor, hc.sensor)
		if err := w.finite("celsius", t.Celsius); err != nil {
			return err
		}
	}
	w.pop()
	return nil
}
