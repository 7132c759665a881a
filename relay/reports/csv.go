package reports

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sections are the report's CSV sections, in page order.
var Sections = []string{"days", "categories", "times", "technicians", "tiers", "devices", "os", "articles"}

// ErrSection is returned by CSV for a section it does not know.
var ErrSection = fmt.Errorf("reports: unknown section; use one of %s", strings.Join(Sections, ", "))

// secs is a duration in whole seconds, as CSV cells hold them.
func secs(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }

func rate(f float64) string { return strconv.FormatFloat(f, 'f', 4, 64) }

// CSV renders one section of r as CSV (a header row, then data; times in
// seconds, rates as fractions). Cells that a spreadsheet would take for a
// formula are prefixed with a quote.
func CSV(r Report, section string) ([]byte, error) {
	var rows [][]string
	switch section {
	case "days":
		rows = append(rows, []string{"date", "opened", "resolved"})
		for _, d := range r.Days {
			rows = append(rows, []string{d.Date.Format(time.DateOnly), strconv.Itoa(d.Opened), strconv.Itoa(d.Resolved)})
		}
	case "categories":
		rows = append(rows, []string{"category", "opened", "resolved"})
		for _, c := range r.Categories {
			rows = append(rows, []string{c.Name, strconv.Itoa(c.Opened), strconv.Itoa(c.Resolved)})
		}
	case "times":
		rows = append(rows, []string{"priority", "first_response_n", "first_response_median_s", "first_response_p90_s",
			"resolution_n", "resolution_median_s", "resolution_p90_s"})
		row := func(name string, t Times) []string {
			return []string{name, strconv.Itoa(t.FirstResponse.N), secs(t.FirstResponse.Median), secs(t.FirstResponse.P90),
				strconv.Itoa(t.Resolution.N), secs(t.Resolution.Median), secs(t.Resolution.P90)}
		}
		rows = append(rows, row("all", r.Overall))
		for _, p := range r.ByPriority {
			rows = append(rows, row(PriorityName(p.Priority), p.Times))
		}
	case "technicians":
		rows = append(rows, []string{"technician", "resolved", "median_handling_s", "reopened_14d", "reopen_rate", "escalations"})
		for _, t := range r.Technicians {
			rows = append(rows, []string{t.Name, strconv.Itoa(t.Resolved), secs(t.MedianHandling), strconv.Itoa(t.Reopened),
				rate(t.ReopenRate), strconv.Itoa(t.Escalations)})
		}
	case "tiers":
		rows = append(rows, []string{"tier", "tickets", "escalated", "escalation_rate"})
		for _, t := range r.Tiers {
			rows = append(rows, []string{strconv.Itoa(t.Tier), strconv.Itoa(t.Tickets), strconv.Itoa(t.Escalated), rate(t.Rate)})
		}
	case "devices", "os":
		rows = append(rows, []string{map[string]string{"devices": "model", "os": "os"}[section], "tickets"})
		src := r.DeviceModels
		if section == "os" {
			src = r.OSVersions
		}
		for _, c := range src {
			rows = append(rows, []string{c.Name, strconv.Itoa(c.Tickets)})
		}
	case "articles":
		rows = append(rows, []string{"article_id", "title", "tickets_resolved"})
		for _, a := range r.Articles {
			rows = append(rows, []string{strconv.FormatInt(a.ID, 10), a.Title, strconv.Itoa(a.Tickets)})
		}
	default:
		return nil, fmt.Errorf("%w (got %q)", ErrSection, section)
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	for _, row := range rows {
		for i, c := range row {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				row[i] = "'" + c
			}
		}
		_ = w.Write(row)
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

// PriorityName is a desksidev1.TicketPriority value's short name.
func PriorityName(p int) string {
	switch p {
	case 1:
		return "low"
	case 2:
		return "normal"
	case 3:
		return "high"
	case 4:
		return "urgent"
	}
	return "unspecified"
}
