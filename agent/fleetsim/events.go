package fleetsim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event kinds a script can hold.
const (
	EventRestart   = "restart"   // SIGTERM the relay(s) the simulator started, then start them again
	EventKill      = "kill"      // SIGKILL one relay the simulator started; it stays down
	EventBlackhole = "blackhole" // no traffic between agents and relays for a while (simulated at the agents)
	EventInventory = "inventory" // a share of the agents change their inventory at once
	EventFanOut    = "fanout"    // one signed command to every online simulated device
)

// Event is one scripted event, At after the fleet is up.
type Event struct {
	At   time.Duration
	Kind string
	// Relay is the relay a restart or kill hits (index in start order);
	// -1 restarts every relay.
	Relay int
	// For is how long a blackhole lasts.
	For time.Duration
	// Share is the fraction of agents whose inventory changes.
	Share float64
}

func (e Event) String() string {
	switch e.Kind {
	case EventRestart:
		if e.Relay < 0 {
			return "restart all relays"
		}
		return fmt.Sprintf("restart relay %d", e.Relay)
	case EventKill:
		return fmt.Sprintf("kill -9 relay %d", e.Relay)
	case EventBlackhole:
		return fmt.Sprintf("blackhole %s", e.For)
	case EventInventory:
		return fmt.Sprintf("inventory change on %g%% of agents", e.Share*100)
	case EventFanOut:
		return "command fan-out to the fleet"
	}
	return e.Kind
}

// ParseEvent reads one event: "AT:KIND[=ARG]", such as "30s:restart",
// "30s:restart=1", "60s:kill=0", "90s:blackhole=10s", "120s:inventory=25%",
// "150s:fanout".
func ParseEvent(s string) (Event, error) {
	s = strings.TrimSpace(s)
	at, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Event{}, fmt.Errorf("event %q: want AT:KIND[=ARG], such as 30s:restart or 90s:blackhole=10s", s)
	}
	d, err := time.ParseDuration(strings.TrimSpace(at))
	if err != nil || d < 0 {
		return Event{}, fmt.Errorf("event %q: %q is not a time after the fleet is up (such as 30s)", s, at)
	}
	kind, arg, hasArg := strings.Cut(strings.TrimSpace(rest), "=")
	e := Event{At: d, Kind: kind}
	switch kind {
	case EventRestart:
		e.Relay = -1
		if hasArg {
			if e.Relay, err = strconv.Atoi(arg); err != nil || e.Relay < 0 {
				return Event{}, fmt.Errorf("event %q: restart=N takes a relay's number (0 for the first)", s)
			}
		}
	case EventKill:
		if hasArg {
			if e.Relay, err = strconv.Atoi(arg); err != nil || e.Relay < 0 {
				return Event{}, fmt.Errorf("event %q: kill=N takes a relay's number (0 for the first)", s)
			}
		}
	case EventBlackhole:
		if e.For, err = time.ParseDuration(arg); err != nil || e.For <= 0 {
			return Event{}, fmt.Errorf("event %q: blackhole=DURATION, such as blackhole=10s", s)
		}
	case EventInventory:
		share := strings.TrimSuffix(arg, "%")
		f, err := strconv.ParseFloat(share, 64)
		if err != nil || f <= 0 || f > 100 {
			return Event{}, fmt.Errorf("event %q: inventory=PERCENT, such as inventory=25%%", s)
		}
		e.Share = f / 100
	case EventFanOut:
		if hasArg {
			return Event{}, fmt.Errorf("event %q: fanout takes no argument (it runs one command on every online simulated device)", s)
		}
	default:
		return Event{}, fmt.Errorf("event %q: unknown kind %q (restart, kill, blackhole, inventory, fanout)", s, kind)
	}
	return e, nil
}

// ParseScript reads events, one per line or separated by ';'; '#'
// starts a comment.
func ParseScript(text string) ([]Event, error) {
	var out []Event
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, part := range strings.Split(line, ";") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			e, err := ParseEvent(part)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}
	return out, nil
}
