package helprequests

import (
	"sync"
	"time"
)

// window is a sliding-window rate limit per key: at most n calls in any
// period.
type window struct {
	n      int
	period time.Duration

	mu    sync.Mutex
	calls map[string][]time.Time
	swept time.Time
}

func newWindow(n int, period time.Duration) *window {
	return &window{n: n, period: period, calls: make(map[string][]time.Time)}
}

// take charges a call of key at now; when the key is over its limit it
// returns how long until a call fits and false.
func (w *window) take(key string, now time.Time) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.swept) > w.period {
		// Keys idle for a whole period are forgotten.
		for k, ts := range w.calls {
			if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= w.period {
				delete(w.calls, k)
			}
		}
		w.swept = now
	}
	ts := w.calls[key]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= w.period {
		i++
	}
	ts = ts[i:]
	if len(ts) >= w.n {
		w.calls[key] = ts
		return ts[0].Add(w.period).Sub(now), false
	}
	w.calls[key] = append(ts, now)
	return 0, true
}
