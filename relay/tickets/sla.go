package tickets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/store"
)

// settingsName is the relay setting that holds the ticket settings (a
// marshalled desksidev1.TicketSettings).
const settingsName = "tickets.settings"

// Target is the SLA of one priority: the first public reply within
// FirstResponse of filing, resolution within Resolution.
type Target struct {
	FirstResponse time.Duration
	Resolution    time.Duration
}

// SLA is the target of each priority (desksidev1.TicketPriority values).
type SLA map[int]Target

// DefaultSLA is what a relay uses until an admin changes it.
func DefaultSLA() SLA {
	return SLA{
		int(desksidev1.TicketPriority_TICKET_PRIORITY_URGENT): {15 * time.Minute, 4 * time.Hour},
		int(desksidev1.TicketPriority_TICKET_PRIORITY_HIGH):   {time.Hour, 8 * time.Hour},
		int(desksidev1.TicketPriority_TICKET_PRIORITY_NORMAL): {4 * time.Hour, 3 * 24 * time.Hour},
		int(desksidev1.TicketPriority_TICKET_PRIORITY_LOW):    {24 * time.Hour, 7 * 24 * time.Hour},
	}
}

// Limits of an SLA target.
const (
	minTarget = time.Minute
	maxTarget = 365 * 24 * time.Hour
)

// SLAState is a ticket's SLA at one moment. A Left is nil once its target
// is met; negative when overdue.
type SLAState struct {
	FirstResponseDue, ResolutionDue           time.Time
	FirstResponseLeft, ResolutionLeft         *time.Duration
	FirstResponseBreached, ResolutionBreached bool
}

// State computes t's SLA at now. The clocks run from filing and are not
// paused while the ticket waits for the requester. Resolution is met when
// the ticket is resolved or closed (a merged duplicate is closed).
func (s SLA) State(t store.Ticket, now time.Time) SLAState {
	tg, ok := s[t.Priority]
	if !ok {
		tg = DefaultSLA()[int(desksidev1.TicketPriority_TICKET_PRIORITY_NORMAL)]
	}
	st := SLAState{FirstResponseDue: t.CreatedAt.Add(tg.FirstResponse), ResolutionDue: t.CreatedAt.Add(tg.Resolution)}
	check := func(due, met time.Time) (*time.Duration, bool) {
		if !met.IsZero() {
			return nil, met.After(due)
		}
		left := due.Sub(now)
		return &left, left < 0
	}
	done := t.ResolvedAt
	if done.IsZero() {
		done = t.ClosedAt
	}
	first := t.FirstResponseAt
	if first.IsZero() {
		first = done // resolved or closed without a reply (a duplicate)
	}
	st.FirstResponseLeft, st.FirstResponseBreached = check(st.FirstResponseDue, first)
	st.ResolutionLeft, st.ResolutionBreached = check(st.ResolutionDue, done)
	return st
}

// Proto is the settings message of s.
func (s SLA) Proto() *desksidev1.TicketSettings {
	m := &desksidev1.TicketSettings{}
	for p := desksidev1.TicketPriority_TICKET_PRIORITY_URGENT; p >= desksidev1.TicketPriority_TICKET_PRIORITY_LOW; p-- {
		if tg, ok := s[int(p)]; ok {
			m.Sla = append(m.Sla, &desksidev1.TicketSlaTarget{Priority: p,
				FirstResponse: durationpb.New(tg.FirstResponse), Resolution: durationpb.New(tg.Resolution)})
		}
	}
	return m
}

// SLA returns the relay's SLA targets: the defaults with what an admin
// set over them.
func (s *Service) SLA(ctx context.Context) (SLA, error) {
	sla := DefaultSLA()
	raw, err := s.store.GetRelaySetting(ctx, settingsName)
	if errors.Is(err, store.ErrNotFound) {
		return sla, nil
	} else if err != nil {
		return nil, err
	}
	m := new(desksidev1.TicketSettings)
	if err := proto.Unmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("tickets: stored settings are unreadable: %w", err)
	}
	for _, t := range m.GetSla() {
		sla[int(t.GetPriority())] = Target{t.GetFirstResponse().AsDuration(), t.GetResolution().AsDuration()}
	}
	return sla, nil
}

// SetSLA replaces the targets of the priorities m names and returns the
// SLA in force.
func (s *Service) SetSLA(ctx context.Context, m *desksidev1.TicketSettings) (SLA, error) {
	sla, err := s.SLA(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range m.GetSla() {
		p := t.GetPriority()
		if _, ok := sla[int(p)]; !ok {
			return nil, invalid("unknown priority %v: low, normal, high or urgent", p)
		}
		fr, res := t.GetFirstResponse().AsDuration(), t.GetResolution().AsDuration()
		for _, d := range []time.Duration{fr, res} {
			if d < minTarget || d > maxTarget {
				return nil, invalid("%s target %s is out of range: %s to %s", priorityName(int(p)), d, minTarget, maxTarget)
			}
		}
		if res < fr {
			return nil, invalid("%s: resolution target %s is before the first response target %s", priorityName(int(p)), res, fr)
		}
		sla[int(p)] = Target{fr, res}
	}
	raw, err := proto.Marshal(sla.Proto())
	if err != nil {
		return nil, err
	}
	if err := s.store.PutRelaySetting(ctx, settingsName, raw); err != nil {
		return nil, err
	}
	return sla, nil
}
