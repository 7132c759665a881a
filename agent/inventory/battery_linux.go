package inventory

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const sysPowerSupply = "/sys/class/power_supply/"

// readBatteries lists system batteries (type Battery, scope not Device:
// wireless mice and headsets report their own batteries, which are not the
// machine's). Energy comes from energy_* (µWh) or, on devices that report
// charge, charge_* (µAh) times voltage_min_design (µV). Desktops have none
// and no error.
func readBatteries(context.Context) ([]*desksidev1.Battery, error) {
	ents, err := os.ReadDir(sysPowerSupply)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: %w", SectionBatteries, err)
	}
	var out []*desksidev1.Battery
	for _, e := range ents {
		dir := sysPowerSupply + e.Name() + "/"
		if attr(dir+"type") != "Battery" || attr(dir+"scope") == "Device" {
			continue
		}
		if attr(dir+"present") == "0" {
			continue
		}
		b := &desksidev1.Battery{Name: clean(e.Name()), State: clean(attr(dir + "status"))}
		if p, ok := num(dir + "capacity"); ok && p <= 100 {
			b.ChargePercent = p
		}
		b.FullWh = energyWh(dir, "full")
		b.DesignWh = energyWh(dir, "full_design")
		if b.ChargePercent == 0 {
			now, full := energyWh(dir, "now"), b.FullWh
			if full > 0 && now <= full {
				b.ChargePercent = math.Round(now/full*1000) / 10
			}
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b *desksidev1.Battery) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// energyWh reads energy_<what> (µWh) or derives it from charge_<what>
// (µAh) and voltage_min_design (µV). Unknown is 0.
func energyWh(dir, what string) float64 {
	if e, ok := num(dir + "energy_" + what); ok {
		return math.Round(e/1e4) / 100
	}
	c, ok1 := num(dir + "charge_" + what)
	v, ok2 := num(dir + "voltage_min_design")
	if ok1 && ok2 {
		return math.Round(c*v/1e10) / 100
	}
	return 0
}

// num reads a non-negative finite number from a sysfs attribute.
func num(path string) (float64, bool) {
	s := attr(path)
	if s == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}
