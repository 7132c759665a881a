package webtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/command"
	"github.com/deskside/deskside/agent/diag"
	"github.com/deskside/deskside/agent/health"
	"github.com/deskside/deskside/agent/inventory"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/auth"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
)

// fakeActions records actions instead of carrying them out (the test must
// not reboot the machine it runs on).
type fakeActions struct {
	mu  sync.Mutex
	got []*desksidev1.RunAction
}

func (f *fakeActions) Run(_ context.Context, a *desksidev1.RunAction) *desksidev1.ActionResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, a)
	return &desksidev1.ActionResult{Ok: true, Message: "reboot scheduled <b>for later</b>"}
}

func (f *fakeActions) calls() []*desksidev1.RunAction {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*desksidev1.RunAction(nil), f.got...)
}

// eval runs JavaScript returning T.
func eval[T any](t testing.TB, c *console, js string) T {
	t.Helper()
	return value(t, c, 10*time.Second, chromedp.Evaluate[T](js))
}

// TestDiagnosticsInBrowser drives the Diagnostics tab against a real relay
// and an agent with the real check and command runners: triage and one
// check, the stored reports, a command's stdout and stderr, cancelling a
// command, a reboot behind its confirmation, and a tier-1 technician who
// may run checks but not commands.
func TestDiagnosticsInBrowser(t *testing.T) {
	c := startConsole(t)
	log := servertest.DiscardLogger()
	st := c.relay.Enroll(t, "diag-workstation")
	actions := &fakeActions{}
	servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: inventory.New(log), Health: health.NewSampler(log, health.Options{}), Hostname: "diag-workstation",
		Checks:   diag.New(diag.Options{Logger: log, RelayHost: c.relay.Addr, RootCAs: c.relay.CAPool()}),
		Commands: command.New(command.Options{Logger: log}),
		Actions:  actions,
	})

	c.signIn(t, "admin", servertest.AdminPassword)
	c.run(t, 20*time.Second,
		chromedp.WaitVisible(row(st.DeviceID, `[data-online=true]`)),
		chromedp.Click(row(st.DeviceID, ` a`)),
		chromedp.WaitVisible(css(`[data-testid=device-ram-total]`)),
		// The Diagnostics tab, by keyboard: focus the selected tab, → selects the next.
		chromedp.Focus(css(`[data-testid=device-tab-overview]`)),
		chromedp.KeyEvent(kb.ArrowRight),
		chromedp.WaitVisible(css(`[data-testid=diag-run-triage]`)),
		chromedp.WaitVisible(css(`[data-testid=diag-history-empty]`)),
		chromedp.WaitNotVisible(css(`[data-testid=device-ram-total]`)),
	)
	if sel := eval[string](t, c, `document.querySelector('[data-testid=device-tab-diagnostics]').getAttribute('aria-selected') + ' ' + (document.activeElement?.dataset.testid ?? '')`); sel != "true device-tab-diagnostics" {
		t.Errorf("after → on the Overview tab: aria-selected and focus %q, want the Diagnostics tab selected and focused", sel)
	}
	if h := eval[string](t, c, `location.hash`); !strings.HasSuffix(h, "?tab=diagnostics") {
		t.Errorf("address %q does not name the Diagnostics tab", h)
	}

	// Triage: every check reports, with a known status.
	c.run(t, 30*time.Second,
		chromedp.Click(css(`[data-testid=diag-run-triage]`)),
		chromedp.WaitVisible(css(`[data-testid=diag-overall][data-report-id]`)),
		chromedp.WaitVisible(css(`[data-testid=diag-history-row]`)),
	)
	results := eval[[]map[string]string](t, c, `[...document.querySelectorAll('[data-testid=diag-results] [data-testid=diag-result]')].map(e => ({check: e.dataset.check, status: e.dataset.status, badge: e.querySelector('.check-badge').textContent}))`)
	if len(results) < 10 {
		t.Fatalf("triage shows %d results, want all checks: %v", len(results), results)
	}
	for _, r := range results {
		if r["check"] == "" || !strings.Contains("pass warn fail unavailable", r["status"]) || r["status"] == "" {
			t.Errorf("result %v: want a check name and a status pass|warn|fail|unavailable", r)
		}
		if want := map[string]string{"pass": "PASS", "warn": "WARN", "fail": "FAIL", "unavailable": "N/A"}[r["status"]]; !strings.Contains(r["badge"], want) {
			t.Errorf("result %v: the badge does not say %s in words", r, want)
		}
	}
	overall := eval[string](t, c, `document.querySelector('[data-testid=diag-overall]').textContent`)
	if !strings.Contains(overall, "Overall:") || !strings.Contains(overall, "checks in") {
		t.Errorf("overall line %q lacks the status or the duration", overall)
	}
	c.screenshot(t, "diagnostics.png")
	// Details open from the keyboard: evidence and, when not passing, the hint.
	c.run(t, 10*time.Second,
		chromedp.Focus(css(`[data-testid=diag-result]:not([data-status=fail]) summary`)),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(css(`[data-testid=diag-result]:not([data-status=fail]) details[open] .diag-body`)),
	)
	c.screenshot(t, "diagnostics-details.png")

	// One check, from the select: a report with that one result, stored too.
	first := eval[string](t, c, `document.querySelector('[data-testid=diag-overall]').dataset.reportId`)
	c.run(t, 20*time.Second,
		chromedp.WaitEnabled(css(`[data-testid=diag-check]`)),
		chromedp.SetValue(css(`[data-testid=diag-check]`), "system.uptime"),
		chromedp.Click(css(`[data-testid=diag-run-check]`)),
		chromedp.WaitVisible(css(fmt.Sprintf(`[data-testid=diag-overall]:not([data-report-id=%q])`, first))),
		chromedp.WaitVisible(css(`[data-testid=diag-history-row]:nth-child(2)`)),
	)
	one := eval[[]string](t, c, `[...document.querySelectorAll('[data-testid=diag-result]')].map(e => e.dataset.check)`)
	if len(one) != 1 || one[0] != "system.uptime" {
		t.Errorf("single check shows %v, want [system.uptime]", one)
	}
	// Back to the triage from the history.
	c.run(t, 10*time.Second,
		chromedp.Click(css(fmt.Sprintf(`[data-testid=diag-history-row][data-report-id=%q] [data-testid=diag-history-view]`, first))),
		chromedp.WaitVisible(css(fmt.Sprintf(`[data-testid=diag-overall][data-report-id=%q]`, first))),
	)
	if n := eval[int](t, c, `document.querySelectorAll('[data-testid=diag-result]').length`); n != len(results) {
		t.Errorf("the stored triage shows %d results, want %d", n, len(results))
	}

	// A command: stdout and stderr, in order, styled apart; Enter runs it.
	c.run(t, 30*time.Second,
		chromedp.SendKeys(css(`[data-testid=cmd-input]`), `echo hello; echo oops 1>&2`+kb.Enter),
		chromedp.WaitVisible(css(`[data-testid=cmd-exit][data-state=ok]`)),
	)
	out := eval[map[string]string](t, c, `({
		all: document.querySelector('[data-testid=cmd-output] .term-out').textContent,
		stdout: [...document.querySelectorAll('.out-stdout')].map(e => e.textContent).join(''),
		stderr: [...document.querySelectorAll('.out-stderr')].map(e => e.textContent).join(''),
		exit: document.querySelector('[data-testid=cmd-exit]').textContent,
	})`)
	// Two pipes written a microsecond apart reach the agent in either order.
	if (out["all"] != "hello\noops\n" && out["all"] != "oops\nhello\n") || out["stdout"] != "hello\n" || out["stderr"] != "oops\n" {
		t.Errorf("command output %q (stdout %q, stderr %q), want hello on stdout and oops on stderr", out["all"], out["stdout"], out["stderr"])
	}
	if !strings.HasPrefix(out["exit"], "exit 0 in ") {
		t.Errorf("exit line %q, want exit 0 in …", out["exit"])
	}
	// Spaced out, the order is the command's.
	c.run(t, 30*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=cmd-input]').value = ''`),
		chromedp.SendKeys(css(`[data-testid=cmd-input]`), `echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three`),
		chromedp.Click(css(`[data-testid=cmd-run]`)),
		chromedp.WaitVisible(css(`[data-testid=cmd-exit][data-state=ok]`)),
	)
	if got := eval[[]string](t, c, `[...document.querySelectorAll('.term-out span')].map(e => e.className + ':' + e.textContent)`); strings.Join(got, "|") != "out-stdout:one\n|out-stderr:two\n|out-stdout:three\n" {
		t.Errorf("output segments %q, want one, two (stderr), three", got)
	}

	c.run(t, 5*time.Second, chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=cmd-output]').scrollIntoView({block: 'center'})`))
	c.screenshot(t, "diagnostics-command.png")

	// Hostile output: escapes are stripped, markup stays text.
	c.run(t, 30*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=cmd-input]').value = ''`),
		chromedp.SendKeys(css(`[data-testid=cmd-input]`), `printf '\033[31mred\033[0m \033]0;title\007<img src=x onerror=window.__pwned=1>\n'; exit 3`+kb.Enter),
		chromedp.WaitVisible(css(`[data-testid=cmd-exit][data-state=failed][data-exit-code="3"]`)),
		chromedp.Sleep(300*time.Millisecond),
	)
	if got := eval[string](t, c, `document.querySelector('.term-out').textContent`); got != "red <img src=x onerror=window.__pwned=1>\n" {
		t.Errorf("hostile output shown as %q", got)
	}
	if eval[bool](t, c, `window.__pwned === 1 || document.querySelector('.term-out img') !== null`) {
		t.Fatal("command output became markup")
	}

	// A flood of output: the pane keeps the last 2 Mi characters, says so,
	// and follows the end.
	c.run(t, 60*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=cmd-input]').value = ''`),
		chromedp.SendKeys(css(`[data-testid=cmd-input]`), `yes 0123456789abcdef | head -c 6000000; echo; echo the-end`+kb.Enter),
		chromedp.WaitVisible(css(`[data-testid=cmd-exit][data-state=ok]`)),
		chromedp.WaitVisible(css(`[data-testid=cmd-dropped]`)),
	)
	flood := eval[map[string]any](t, c, `(() => { const o = document.querySelector('[data-testid=cmd-output]'); const t = o.querySelector('.term-out').textContent;
		return {len: t.length, end: t.endsWith('\nthe-end\n'), bottom: o.scrollHeight - o.scrollTop - o.clientHeight < 10}; })()`)
	if flood["len"] != float64(2<<20) || flood["end"] != true || flood["bottom"] != true {
		t.Errorf("after 6 MB of output the pane holds %v characters (want %d), ends with the last line: %v, scrolled to the end: %v", flood["len"], 2<<20, flood["end"], flood["bottom"])
	}

	// Cancel a long command: the pane says so at once, the relay records it.
	c.run(t, 30*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=cmd-input]').value = ''`),
		chromedp.SendKeys(css(`[data-testid=cmd-input]`), `sleep 30`),
		chromedp.Click(css(`[data-testid=cmd-run]`)),
		chromedp.WaitEnabled(css(`[data-testid=cmd-cancel]`)),
		chromedp.Sleep(time.Second),
	)
	began := time.Now()
	c.run(t, 10*time.Second,
		chromedp.Click(css(`[data-testid=cmd-cancel]`)),
		chromedp.WaitVisible(css(`[data-testid=cmd-exit][data-state=cancelled]`)),
	)
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("cancel took %s", d)
	}
	cs, actx := c.relay.Admin(t)
	servertest.CheckFor(t, 15*time.Second, 100*time.Millisecond, func() error {
		ev, err := cs.ListAuditEvents(actx, &desksidev1.ListAuditEventsRequest{Limit: 50})
		if err != nil {
			return err
		}
		for _, e := range ev.GetEvents() {
			if e.GetAction() == "command.run" && strings.Contains(e.GetDetail(), `"sleep 30"`) {
				if strings.Contains(e.GetDetail(), "canceled=true") {
					return nil
				}
				return fmt.Errorf("audit says %q", e.GetDetail())
			}
		}
		return errNotYet
	})

	// Reboot: nothing happens until the confirmation.
	selectKind := `(() => { const s = document.querySelector('[data-testid=action-kind]'); s.value = 'reboot'; s.dispatchEvent(new Event('change', {bubbles: true})); })()`
	c.run(t, 10*time.Second,
		chromedp.Evaluate[chromedp.Void](selectKind),
		chromedp.WaitVisible(css(`[data-testid=action-reboot-message]`)),
		chromedp.Click(css(`[data-testid=action-run]`)),
		chromedp.WaitVisible(css(`[data-testid=action-confirm-dialog]`)),
		chromedp.Click(css(`[data-testid=action-confirm-cancel]`)),
		chromedp.WaitNotPresent(css(`[data-testid=action-confirm-dialog]`)),
	)
	if n := len(actions.calls()); n != 0 {
		t.Fatalf("a cancelled confirmation sent %d actions", n)
	}
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=action-run]`)),
		chromedp.WaitVisible(css(`[data-testid=action-confirm-dialog]`)),
	)
	c.screenshot(t, "diagnostics-reboot.png")
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=action-confirm]`)),
		chromedp.WaitVisible(css(`[data-testid=action-ok]`)),
	)
	calls := actions.calls()
	if len(calls) != 1 || calls[0].GetReboot() == nil || calls[0].GetReboot().GetDelay().AsDuration() != 5*time.Minute || calls[0].GetReboot().GetMessage() == "" {
		t.Fatalf("agent got %v, want one reboot in 5 minutes with a message", calls)
	}
	if txt := eval[string](t, c, `document.querySelector('[data-testid=action-result]').textContent`); !strings.Contains(txt, "<b>for later</b>") {
		t.Errorf("action result %q does not show the agent's message as text", txt)
	}

	// A tier-1 technician: checks yes, commands no: the pane is not there,
	// a note says why (the relay refuses them anyway: TestTierTable).
	hash, err := auth.HashPassword("tier-one-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.relay.Srv.Store().CreateTechnician(context.Background(), store.Technician{
		Name: "tier1", PasswordHash: hash, Role: int(desksidev1.Role_ROLE_TIER1), CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=signout]`)), chromedp.WaitVisible(css(`[data-testid=login-name]`)))
	c.signIn(t, "tier1", "tier-one-password")
	c.run(t, 30*time.Second,
		chromedp.Navigate(c.url+"#/devices/"+st.DeviceID+"?tab=diagnostics"),
		chromedp.WaitVisible(css(`[data-testid=diag-history-row]`)),
		chromedp.WaitVisible(css(`[data-testid=tier-note]`)),
	)
	if n := eval[int](t, c, `document.querySelectorAll('[data-testid=cmd-input], [data-testid=action-run]').length`); n != 0 {
		t.Errorf("a tier-1 technician sees %d command or action controls", n)
	}
	if msg := eval[string](t, c, `document.querySelector('[data-testid=tier-note]').textContent`); !strings.Contains(msg, "Tier 2 or higher") {
		t.Errorf("tier-1 note says %q", msg)
	}
	c.screenshot(t, "diagnostics-tier1.png")
	c.run(t, 30*time.Second, chromedp.Click(css(`[data-testid=diag-run-triage]`)))
	c.screenshot(t, "diagnostics-running.png")
	c.run(t, 30*time.Second, chromedp.WaitVisible(css(`[data-testid=diag-history-row]:nth-child(3)`)))
	if s := eval[string](t, c, `document.querySelector('[data-testid=diag-overall]').textContent`); !strings.Contains(s, "by tier1") {
		t.Errorf("tier-1 triage: overall says %q", s)
	}
}

// hostileChecks reports the payload in every string of a report.
type hostileChecks struct{}

func (hostileChecks) Run(context.Context, *desksidev1.RunChecks) *desksidev1.CheckReport {
	long := payload + strings.Repeat("W", 3000)
	return &desksidev1.CheckReport{
		Started: timestamppb.Now(), Duration: durationpb.New(1500 * time.Millisecond), Overall: desksidev1.CheckStatus_CHECK_STATUS_FAIL,
		Results: []*desksidev1.CheckResult{
			{Name: payload, Status: desksidev1.CheckStatus_CHECK_STATUS_FAIL, Summary: long, Hint: long,
				Evidence: []*desksidev1.CheckEvidence{{Key: payload, Value: long}, {Key: long, Value: payload}}},
			{Name: long, Status: desksidev1.CheckStatus(99), Summary: payload},
		},
	}
}

// TestHostileDiagnostics: check results full of markup stay text, and long
// values do not widen the page.
func TestHostileDiagnostics(t *testing.T) {
	c := startConsole(t)
	st := c.relay.Enroll(t, "hostile-checks")
	servertest.RunAgent(t, st, servertest.AgentOptions{Inventory: hostileInventory{}, Health: hostileHealth{}, Checks: hostileChecks{}})
	c.signIn(t, "admin", servertest.AdminPassword)
	c.run(t, 30*time.Second,
		chromedp.WaitVisible(row(st.DeviceID, `[data-online=true]`)),
		chromedp.Navigate(c.url+"#/devices/"+st.DeviceID+"?tab=diagnostics"),
		chromedp.WaitVisible(css(`[data-testid=diag-run-triage]`)),
		chromedp.Click(css(`[data-testid=diag-run-triage]`)),
		chromedp.WaitVisible(css(`[data-testid=diag-overall][data-status=fail]`)),
		chromedp.Sleep(500*time.Millisecond),
	)
	if eval[bool](t, c, `window.__pwned === 1`) {
		t.Fatal("agent-reported script ran")
	}
	statuses := eval[[]string](t, c, `[...document.querySelectorAll('[data-testid=diag-result]')].map(e => e.dataset.status)`)
	if strings.Join(statuses, " ") != "fail unavailable" {
		t.Errorf("statuses %v, want fail then unavailable (for an unknown status)", statuses)
	}
	if text := eval[string](t, c, `document.querySelector('[data-testid=diag-results]').textContent`); !strings.Contains(text, `<script>window.__pwned=1</script>`) {
		t.Error("the payload is not shown as text")
	}
	if w := eval[int](t, c, `document.documentElement.scrollWidth`); w > 1300 {
		t.Errorf("layout broken: page is %d px wide at a 1280 px window", w)
	}
	c.screenshot(t, "diagnostics-hostile.png")
}
