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
}

func (u *relayUse) result() RelayUse {
	res := RelayUse{Name: u.rl.name, PeakRSS: u.peakRSS, CPUSeconds: float64(u.cpuTicks) / clockTicks, PeakCores: u.peak}
	if u.running > 0 {
		res.AvgCores = res.CPUSeconds / u.running.Seconds()
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
	u.peak = max(u.peak, float64(d)/clockTicks/dt.Seconds())
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

func (r *run) stopRelayUse() {
	if r.useStop == nil {
		return
	}
	close(r.useStop)
	<-r.useDone
	r.useStop = nil
}
