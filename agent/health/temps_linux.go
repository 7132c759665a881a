package health

import (
	"context"

	"github.com/shirou/gopsutil/v3/host"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// readTemperatures reads hwmon sensors (thermal zones as a fallback).
// Machines without sensors (VMs) return none and no error. gopsutil
// returns partial results together with warnings for unreadable sensors;
// the readable ones are kept.
func readTemperatures(ctx context.Context) ([]*desksidev1.Temperature, error) {
	ts, err := host.SensorsTemperaturesWithContext(ctx)
	out := make([]*desksidev1.Temperature, 0, len(ts))
	for _, t := range ts {
		out = append(out, &desksidev1.Temperature{Sensor: t.SensorKey, Celsius: t.Temperature})
	}
	if err != nil && len(out) == 0 {
		return nil, err
	}
	return out, nil
}
