package fleetsim

import "time"

// relayUse samples a started relay's memory and CPU once a second.
type relayUse struct {
	rl       *ownedRelay
	peakRSS  uint64
	cpuTicks uint64 // summed over the relay's processes (restarts)
	lastPid  int
	lastCPU  uint64
	running  time.Duration
	peak     float64
	// The steady window: from the fleet being up to the first event (or
	// the end), the relay's CPU time and the wall time.
	steadyTicks0, steadyTicks uint64
	steadyFrom                time.Time
	steadyFor                 time.Duration
}

func (u *relayUse) result() RelayUse {
	res := RelayUse{Name: u.rl.name, PeakRSS: u.peakRSS, CPUSeconds: float64(u.cpuTicks) / clockTicks, PeakCores: u.peak}
	if u.running > 0 {
		res.AvgCores = res.CPUSeconds / u.running.Seconds()
	}
	if u.steadyFor > 0 {
		res.SteadyCores = float64(u.steadyTicks) / clockTicks / u.steadyFor.Seconds()
		res.SteadyFor = u.steadyFor.Round(time.Second).String()
	}
	return res
}

func (u *relayUse) sample(dt time.Duration) {
	pid := u.rl.pid()
	if pid == 0 {
		return
	}
	rss, cpu, err := procStat(pid)
	if err != nil {
		return
	}
	if pid != u.lastPid {
		u.lastPid, u.lastCPU = pid, 0
	}
	d := cpu - u.lastCPU
	u.cpuTicks += d
	u.lastCPU = cpu
	u.running += dt
	u.peakRSS = max(u.peakRSS, rss)
	if dt > 0 {
		u.peak = max(u.peak, float64(d)/clockTicks/dt.Seconds())
	}
}

func (r *run) startRelayUse() {
	for _, rl := range r.relays {
		r.relayUse = append(r.relayUse, &relayUse{rl: rl})
	}
	r.useStop, r.useDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.useDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-r.useStop:
				return
			case now := <-t.C:
				r.mu.Lock()
				for _, u := range r.relayUse {
					u.sample(now.Sub(last))
				}
				r.mu.Unlock()
				last = now
			}
		}
	}()
}

// steady marks the start (begin) or the end of the steady window.
func (r *run) steady(begin bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range r.relayUse {
		if pid := u.rl.pid(); pid != 0 {
			u.sample(0) // bring the CPU time up to now
		}
		switch {
		case begin:
			u.steadyTicks0, u.steadyFrom = u.cpuTicks, time.Now()
		case !u.steadyFrom.IsZero() && u.steadyFor == 0:
			u.steadyTicks, u.steadyFor = u.cpuTicks-u.steadyTicks0, time.Since(u.steadyFrom)
		}
	}
}

func (r *run) stopRelayUse() {
	if r.useStop == nil {
		return
	}
	close(r.useStop)
	<-r.useDone
	r.useStop = nil
}
