package link

import (
	"math/rand/v2"
	"time"
)

// Backoff is the gRPC connection-backoff algorithm
// (https://github.com/grpc/grpc/blob/master/doc/connection-backoff.md):
// the delay starts at Base, grows by Multiplier per failed attempt up to
// Max, and each delay is spread by ±Jitter so that thousands of agents
// dropped at once by a relay restart do not return at once.
type Backoff struct {
	Base       time.Duration
	Multiplier float64
	Jitter     float64
	Max        time.Duration
}

// DefaultBackoff is the spec's values: 1 s, ×1.6, ±20 %, 120 s cap.
var DefaultBackoff = Backoff{Base: time.Second, Multiplier: 1.6, Jitter: 0.2, Max: 120 * time.Second}

// Delay returns the wait before retry number attempt (0 for the first retry).
func (b Backoff) Delay(attempt int) time.Duration {
	d := float64(b.Base)
	for i := 0; i < attempt && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	d = min(d, float64(b.Max))
	d *= 1 + b.Jitter*(rand.Float64()*2-1)
	return time.Duration(d)
}
