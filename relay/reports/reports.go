// Package reports computes the help-desk reports of issue 12 over a
// period from the compact rows store.ReportStore returns. The definitions
// live here, once, so every store gives the same answers:
//
//   - A ticket is opened on its creation day. A resolution is a status
//     entry to "resolved"; a ticket resolved twice counts twice.
//   - Time to first response: from creation to the first public reply by a
//     technician (the ticket's FirstResponseAt), for tickets opened in the
//     period that have one.
//   - Time to resolution: from creation to the ticket's first resolution,
//     for tickets opened in the period that have one.
//   - The resolver of a resolution is the author of its status entry.
//     Handling time is from the latest of creation, the last assignment to
//     the resolver and the last reopen before the resolution, to the
//     resolution.
//   - A resolution is reopened when the ticket's next move out of
//     resolved or closed back to an active status comes within 14 days.
//   - An escalation is a tier entry to a higher tier; its technician is the
//     entry's author. A tier's escalation rate is, among tickets opened in
//     the period that were ever at that tier, the share escalated out of it.
//   - Medians and p90 are nearest-rank: the ceil(p·n)-th smallest value (no
//     interpolation), so the answer is always one of the measured times.
//   - Days are UTC calendar days; the period is [from, to).
package reports

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// ReopenWindow is how soon a reopen must follow a resolution to count.
const ReopenWindow = 14 * 24 * time.Hour

// MaxPeriod is the longest period one report covers.
const MaxPeriod = 366 * 24 * time.Hour

// TopN is how many device models, OS versions and articles a report lists.
const TopN = 10

// ErrPeriod is returned for an empty, reversed or too long period.
var ErrPeriod = errors.New("reports: bad period")

// Report is every section of the reports page for one period.
type Report struct {
	From, To      time.Time
	Days          []Day
	Categories    []Category
	Overall       Times
	ByPriority    []PriorityTimes
	Technicians   []Technician
	Tiers         []TierRate
	DeviceModels  []Count
	OSVersions    []Count
	Articles      []ArticleCount
	TicketsOpened int
	Resolutions   int
}

// Day counts the tickets opened and the resolutions of one UTC day.
type Day struct {
	Date             time.Time // midnight UTC
	Opened, Resolved int
}

// Category counts tickets opened and resolutions per category.
type Category struct {
	Name             string
	Opened, Resolved int
}

// Stat is a median and p90 over N durations (zero when N is 0).
type Stat struct {
	N           int
	Median, P90 time.Duration
}

// Times are the times to first response and to resolution.
type Times struct {
	FirstResponse, Resolution Stat
}

// PriorityTimes are Times for one priority (a desksidev1.TicketPriority).
type PriorityTimes struct {
	Priority int
	Times
}

// Technician is one technician's resolutions and escalations.
type Technician struct {
	Name           string
	Resolved       int
	MedianHandling time.Duration
	Reopened       int
	// ReopenRate is Reopened / Resolved (0 when nothing was resolved).
	ReopenRate  float64
	Escalations int
}

// TierRate is one tier's escalation rate.
type TierRate struct {
	Tier      int
	Tickets   int // opened in the period and ever at this tier
	Escalated int // of those, escalated out of it
	Rate      float64
}

// Count is a name with a ticket count.
type Count struct {
	Name    string
	Tickets int
}

// ArticleCount is a knowledge-base article with how many tickets resolved
// in the period it is linked to.
type ArticleCount struct {
	ID      int64
	Title   string
	Tickets int
}

// Build reads the period's rows from st and computes the report.
func Build(ctx context.Context, st store.ReportStore, from, to time.Time) (Report, error) {
	from, to = from.UTC(), to.UTC()
	if !to.After(from) || to.Sub(from) > MaxPeriod {
		return Report{}, fmt.Errorf("%w: from %s to %s; give a period of one day to a year (--from 2026-11-01 --to 2026-12-01)",
			ErrPeriod, from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	rows, err := st.ReportTickets(ctx, from, to)
	if err != nil {
		return Report{}, err
	}
	return Compute(rows, from, to), nil
}

// Compute computes the report of [from, to) from rows (see the package
// comment for the definitions).
func Compute(rows []store.ReportTicket, from, to time.Time) Report {
	from, to = from.UTC(), to.UTC()
	r := Report{From: from, To: to}
	in := func(t time.Time) bool { return !t.Before(from) && t.Before(to) }
	day0 := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	for d := day0; d.Before(to); d = d.AddDate(0, 0, 1) {
		r.Days = append(r.Days, Day{Date: d})
	}
	dayOf := func(t time.Time) *Day {
		t = t.UTC()
		i := int(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Sub(day0) / (24 * time.Hour))
		return &r.Days[i]
	}
	cats := map[string]*Category{}
	cat := func(name string) *Category {
		c := cats[name]
		if c == nil {
			c = &Category{Name: name}
			cats[name] = c
		}
		return c
	}
	var firstAll, resAll []time.Duration
	firstBy, resBy := map[int][]time.Duration{}, map[int][]time.Duration{}
	type techAcc struct {
		Technician
		handling []time.Duration
	}
	techs := map[string]*techAcc{}
	tech := func(name string) *techAcc {
		a := techs[name]
		if a == nil {
			a = &techAcc{Technician: Technician{Name: name}}
			techs[name] = a
		}
		return a
	}
	tiers := map[int]*TierRate{}
	models, oses := map[string]int{}, map[string]int{}
	articles := map[int64]*ArticleCount{}

	for _, t := range rows {
		opened := in(t.CreatedAt)
		if opened {
			r.TicketsOpened++
			dayOf(t.CreatedAt).Opened++
			cat(t.Category).Opened++
			if !t.FirstResponseAt.IsZero() {
				d := t.FirstResponseAt.Sub(t.CreatedAt)
				firstAll = append(firstAll, d)
				firstBy[t.Priority] = append(firstBy[t.Priority], d)
			}
			if t.DeviceModel != "" {
				models[t.DeviceModel]++
			}
			if t.DeviceOS != "" {
				oses[t.DeviceOS]++
			}
		}
		// Walk the timeline once: resolutions, reopens, assignments, tiers.
		var (
			firstResolution  time.Time
			lastAssign       = map[string]time.Time{}
			lastReopen       time.Time
			resolvedInPeriod bool
			visited          = map[int]bool{}
			escalatedFrom    = map[int]bool{}
		)
		startTier := t.Tier
		for _, e := range t.Events {
			if e.Kind == store.ReportKindTier {
				if n, err := strconv.Atoi(e.From); err == nil {
					startTier = n
				}
				break
			}
		}
		visited[startTier] = true
		for i, e := range t.Events {
			switch e.Kind {
			case store.ReportKindAssignee:
				if e.To != "" {
					lastAssign[e.To] = e.Time
				}
			case store.ReportKindTier:
				f, err1 := strconv.Atoi(e.From)
				to, err2 := strconv.Atoi(e.To)
				if err1 != nil || err2 != nil {
					continue
				}
				visited[to] = true
				if to > f {
					escalatedFrom[f] = true
					if in(e.Time) {
						tech(e.Author).Escalations++
					}
				}
			case store.ReportKindStatus:
				if reopen(e) {
					lastReopen = e.Time
				}
				if e.To != "resolved" {
					continue
				}
				if firstResolution.IsZero() {
					firstResolution = e.Time
				}
				if !in(e.Time) {
					continue
				}
				resolvedInPeriod = true
				r.Resolutions++
				dayOf(e.Time).Resolved++
				cat(t.Category).Resolved++
				a := tech(e.Author)
				a.Resolved++
				start := t.CreatedAt
				if at, ok := lastAssign[e.Author]; ok && at.After(start) {
					start = at
				}
				if lastReopen.After(start) {
					start = lastReopen
				}
				a.handling = append(a.handling, e.Time.Sub(start))
				for _, n := range t.Events[i+1:] {
					if n.Kind == store.ReportKindStatus && reopen(n) {
						if n.Time.Sub(e.Time) <= ReopenWindow {
							a.Reopened++
						}
						break
					}
				}
			}
		}
		if opened {
			if !firstResolution.IsZero() {
				d := firstResolution.Sub(t.CreatedAt)
				resAll = append(resAll, d)
				resBy[t.Priority] = append(resBy[t.Priority], d)
			}
			for tier := range visited {
				tr := tiers[tier]
				if tr == nil {
					tr = &TierRate{Tier: tier}
					tiers[tier] = tr
				}
				tr.Tickets++
				if escalatedFrom[tier] {
					tr.Escalated++
				}
			}
		}
		if resolvedInPeriod {
			for _, a := range t.Articles {
				ac := articles[a.ID]
				if ac == nil {
					ac = &ArticleCount{ID: a.ID, Title: a.Title}
					articles[a.ID] = ac
				}
				ac.Tickets++
			}
		}
	}

	for _, c := range cats {
		r.Categories = append(r.Categories, *c)
	}
	slices.SortFunc(r.Categories, func(a, b Category) int {
		return cmp.Or(cmp.Compare(b.Opened, a.Opened), cmp.Compare(a.Name, b.Name))
	})
	r.Overall = Times{stat(firstAll), stat(resAll)}
	prios := map[int]bool{}
	for p := range firstBy {
		prios[p] = true
	}
	for p := range resBy {
		prios[p] = true
	}
	for p := range prios {
		r.ByPriority = append(r.ByPriority, PriorityTimes{p, Times{stat(firstBy[p]), stat(resBy[p])}})
	}
	slices.SortFunc(r.ByPriority, func(a, b PriorityTimes) int { return cmp.Compare(b.Priority, a.Priority) })
	for _, a := range techs {
		if a.Name == "" {
			continue
		}
		a.MedianHandling = stat(a.handling).Median
		if a.Resolved > 0 {
			a.ReopenRate = float64(a.Reopened) / float64(a.Resolved)
		}
		r.Technicians = append(r.Technicians, a.Technician)
	}
	slices.SortFunc(r.Technicians, func(a, b Technician) int { return cmp.Compare(a.Name, b.Name) })
	for _, tr := range tiers {
		tr.Rate = float64(tr.Escalated) / float64(tr.Tickets)
		r.Tiers = append(r.Tiers, *tr)
	}
	slices.SortFunc(r.Tiers, func(a, b TierRate) int { return cmp.Compare(a.Tier, b.Tier) })
	r.DeviceModels, r.OSVersions = top(models), top(oses)
	for _, a := range articles {
		r.Articles = append(r.Articles, *a)
	}
	slices.SortFunc(r.Articles, func(a, b ArticleCount) int {
		return cmp.Or(cmp.Compare(b.Tickets, a.Tickets), cmp.Compare(a.Title, b.Title), cmp.Compare(a.ID, b.ID))
	})
	if len(r.Articles) > TopN {
		r.Articles = r.Articles[:TopN]
	}
	return r
}

// reopen says whether a status entry moves a ticket from done back to work.
func reopen(e store.ReportEvent) bool {
	return (e.From == "resolved" || e.From == "closed") && (e.To == "new" || e.To == "open" || e.To == "pending user")
}

// Percentile is the nearest-rank p-quantile (0 < p ≤ 1) of ds, sorted or
// not: the ceil(p·n)-th smallest; 0 for none.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))]
}

func stat(ds []time.Duration) Stat {
	if len(ds) == 0 {
		return Stat{}
	}
	return Stat{N: len(ds), Median: Percentile(ds, 0.5), P90: Percentile(ds, 0.9)}
}

func top(m map[string]int) []Count {
	var out []Count
	for n, c := range m {
		out = append(out, Count{n, c})
	}
	slices.SortFunc(out, func(a, b Count) int { return cmp.Or(cmp.Compare(b.Tickets, a.Tickets), cmp.Compare(a.Name, b.Name)) })
	if len(out) > TopN {
		out = out[:TopN]
	}
	return out
}
