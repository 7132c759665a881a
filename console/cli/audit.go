package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const auditHelp = `
Lists the relay's audit log, newest first (admin only): sign-ins,
enrollments, tokens, revocations, commands, sessions, exports, refused
calls. Each record is chained to the one before and sealed with the
relay's audit key; ` + "`deskside audit verify`" + ` checks the chain.

Filters (all optional, combined):
  --actor NAME    exactly this technician (or relay, token:ID)
  --device ID     exactly this target: a device id, or a technician, token:ID, group
  --action A      exactly this action, or a prefix ending in * (desktop.*)
  --since T       at or after T; --until T: before T. T is RFC 3339
                  (2026-12-01T09:00:00Z), a local date or date and time
                  (2026-12-01, "2026-12-01 09:00"), or a duration back from
                  now (24h, 90m)

The listing stops after --limit events; the line on standard error names
the --before value that continues it.

Examples:
  deskside audit --action 'login*' --since 24h
  deskside audit --device 3f2a9c… --until 2026-12-01
  deskside audit --actor alice --json`

func (e *runEnv) audit(args []string) error {
	fs := e.flags("audit", auditHelp)
	limit := fs.Int("limit", 50, "at most `N` events (up to 10000)")
	actor := fs.String("actor", "", "only events by this technician")
	device := fs.String("device", "", "only events whose target is this device `ID` (or other target)")
	action := fs.String("action", "", "only this action, or actions starting with a prefix ending in *")
	since := fs.String("since", "", "only events at or after `T`")
	until := fs.String("until", "", "only events before `T`")
	before := fs.Int64("before", 0, "only events older than record `SEQ` (the next page)")
	asJSON := fs.Bool("json", false, "print a JSON array of events, with their hashes")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *limit <= 0 || *limit > 10000 {
		return errUsage(fs, "--limit must be between 1 and 10000")
	}
	if *before < 0 {
		return errUsage(fs, "--before must be a record number (SEQ)")
	}
	req := &desksidev1.ListAuditEventsRequest{Limit: int32(*limit), Actor: *actor, Device: *device, Action: *action, Before: *before}
	for _, tf := range []struct {
		name, val string
		dst       **timestamppb.Timestamp
	}{{"since", *since, &req.Since}, {"until", *until, &req.Until}} {
		if tf.val == "" {
			continue
		}
		t, err := parseWhen(tf.val, e.now())
		if err != nil {
			return errUsage(fs, "--%s: %v", tf.name, err)
		}
		*tf.dst = timestamppb.New(t)
	}
	if strings.Contains(strings.TrimSuffix(*action, "*"), "*") {
		return errUsage(fs, "--action: * may only end it (desktop.*)")
	}
	resp, err := unary(e, func(ctx context.Context, cs desksidev1.ConsoleServiceClient) (*desksidev1.ListAuditEventsResponse, error) {
		return cs.ListAuditEvents(ctx, req)
	})
	if err != nil {
		return err
	}
	out := e.output()
	evs := resp.GetEvents()
	filtered := *actor != "" || *device != "" || *action != "" || *since != "" || *until != "" || *before != 0
	switch {
	case *asJSON:
		if err := writeJSONArray(out, evs); err != nil {
			return err
		}
	case len(evs) == 0 && filtered:
		fmt.Fprintln(out, "No audit events match.")
	case len(evs) == 0:
		fmt.Fprintln(out, "The audit log is empty.")
	default:
		rows := make([][]string, 0, len(evs))
		for _, ev := range evs {
			rows = append(rows, []string{strconv.FormatInt(ev.GetSeq(), 10), fmtTime(ev.GetTime().AsTime()),
				ev.GetActor(), ev.GetAction(), ev.GetTarget(), ev.GetDetail()})
		}
		if err := table(out, "", []string{"SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "DETAIL"}, rows); err != nil {
			return err
		}
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if len(evs) == *limit && !*asJSON {
		fmt.Fprintf(e.stderr, "Older events: add --before %d.\n", evs[len(evs)-1].GetSeq())
	}
	return nil
}

// parseWhen reads a --since/--until value: RFC 3339, a local date or date
// and time, or a duration back from now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, errors.New("a duration back from now must be positive (24h)")
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use 2026-12-01T09:00:00Z, 2026-12-01, \"2026-12-01 09:00\" or a duration such as 24h", clean(s))
}

const auditVerifyHelp = `
Checks the whole audit log on the relay (admin only): the relay holds the
audit key, walks every record oldest first and reports the first one that
does not match its seal, saying whether it was edited, deleted, reordered
or inserted, or how many records verified. Records from before the relay
had a key are checked against the unkeyed chain and counted apart; the
key's first record (audit.rekeyed) seals them.

A chain cannot show records removed from its end: compare the newest
record reported with what you expect.

Exit status: 0 when every record verifies, 1 at a bad record or an error.`

func (e *runEnv) auditVerify(args []string) error {
	fs := e.flags("audit verify", auditVerifyHelp)
	if err := noArgs(fs, args); err != nil {
		return err
	}
	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	// No deadline: a large log takes as long as it takes, with progress.
	stream, err := c.client.VerifyAuditLog(e.ctx, &desksidev1.VerifyAuditLogRequest{})
	if err != nil {
		return c.explain(err)
	}
	progress := isTerminalWriter(e.stderr)
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errors.New("the relay ended the verification without a result; run `deskside audit verify` again")
		}
		if err != nil {
			return c.explain(err)
		}
		if !m.GetDone() {
			if progress {
				fmt.Fprintf(e.stderr, "\r%d records verified…", m.GetChecked())
			}
			continue
		}
		if progress {
			fmt.Fprint(e.stderr, "\r\033[K")
		}
		return e.printVerify(m)
	}
}

func (e *runEnv) printVerify(m *desksidev1.VerifyAuditLogResponse) error {
	out := e.output()
	keyed := m.GetChecked() - m.GetUnkeyed()
	if p := m.GetProblem(); p != nil {
		when := ""
		if p.GetTime() != nil {
			when = " (" + fmtTime(p.GetTime().AsTime()) + ")"
		}
		fmt.Fprintf(out, "%d records verified before record %d.\n", m.GetChecked(), p.GetSeq())
		if err := out.Flush(); err != nil {
			return err
		}
		return &exitCodeError{code: exitError, msg: fmt.Sprintf(
			"the audit log does not verify: record %d%s was %s: %s. Keep a copy of the database as it is for investigation; `deskside audit --before %d` lists the records around it.",
			p.GetSeq(), when, clean(p.GetKind()), clean(p.GetDetail()), p.GetSeq()+5)}
	}
	if m.GetChecked() == 0 {
		fmt.Fprintln(out, "The audit log is empty: 0 records verified.")
		return out.Flush()
	}
	fmt.Fprintf(out, "%d records verified, the newest record %d (%s).\n", m.GetChecked(), m.GetLastSeq(), fmtTime(m.GetLastTime().AsTime()))
	fmt.Fprintf(out, "%d sealed with the relay's key %s from record %d (audit.rekeyed) on", keyed, clean(m.GetKeyId()), m.GetAnchor())
	if m.GetUnkeyed() > 0 {
		fmt.Fprintf(out, "; %d before it unkeyed (written before the key existed, sealed by record %d)", m.GetUnkeyed(), m.GetAnchor())
	}
	fmt.Fprintln(out, ".")
	return out.Flush()
}
