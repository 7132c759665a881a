// The device page's Diagnostics tab: run a triage (every check) or one
// check, read the results, browse the stored reports; the command pane and
// the remediation actions sit below. Results, evidence and hints come from
// the agent and are hostile: text nodes only, wrapped and height-capped by
// CSS.

import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { checkSession, client, explain, isCanceled } from "../api";
import { budgetChoices, countLine, sortResults, statusIcon, statusKey, statusLabel, statusWords, type StatusKey } from "../checks";
import { h, replace, setText, uid } from "../dom";
import { fmtTime, plural, tsDate } from "../format";
import { Role, type Device, type StoredCheckReport } from "../gen/deskside/v1/console_pb";
import type { CheckReport, CheckResult } from "../gen/deskside/v1/diag_pb";
import { kvList, notice, type Session } from "../page";
import { durationMs, fmtDuration } from "../term";
import { actionsCard } from "./actions";
import { commandPane } from "./terminal";

const historyLimit = 25;

/** checkBadge is the status as a coloured badge with its label in words. */
export function checkBadge(k: StatusKey, big = false): HTMLElement {
  return h("span", { class: `check-badge check-${k}${big ? " check-badge-big" : ""}` },
    h("span", { class: "check-icon", "aria-hidden": "true" }, statusIcon[k]), statusLabel[k]);
}

/** checkResultItem is one check's result: badge, name, summary, duration,
 * and, unfolded (failures are), the hint and evidence; with again, a
 * button that runs the check again. Shared with the ticket page's triage
 * report (pages/ticketfiles.ts). */
export function checkResultItem(r: CheckResult, again?: () => void, running = false): HTMLElement {
  const k = statusKey(r.status);
  const evidence = r.evidence.length ? kvList(r.evidence.map((e) => [e.key || "–", e.value || "–"] as [string, string]), { class: "evidence" }) : null;
  let againBtn: HTMLElement | null = null;
  if (again && r.name) {
    const b = h("button", { type: "button", class: "btn btn-quiet btn-small", data: { testid: "diag-rerun" } }, "Run this check again");
    b.addEventListener("click", again);
    b.disabled = running;
    againBtn = h("p", { class: "diag-again" }, b);
  }
  const dur = durationMs(r.duration);
  const details = h("details", { class: "diag-details", open: k === "fail" },
    h("summary", null,
      h("span", { class: "diag-cell-status" }, checkBadge(k)),
      h("code", { class: "diag-name clip", title: r.name.length > 24 ? r.name : undefined }, r.name || "(unnamed)"),
      h("span", { class: "diag-summary wrap" }, r.summary || "–"),
      h("span", { class: "diag-dur muted" }, r.duration ? fmtDuration(dur) : ""),
    ),
    h("div", { class: "diag-body" },
      r.hint ? h("p", { class: "diag-hint" }, h("strong", null, "What to do: "), h("span", { class: "wrap" }, r.hint)) : null,
      evidence ? h("div", null, h("h4", { class: "diag-sub" }, "Evidence"), evidence) : h("p", { class: "muted" }, "No evidence reported."),
      againBtn,
    ),
  );
  return h("li", { class: `diag-result diag-${k}`, data: { testid: "diag-result", check: r.name, status: k } }, details);
}

/** checkResultsList is a report's results, problems first. */
export function checkResultsList(rep: CheckReport, item: (r: CheckResult) => HTMLElement = (r) => checkResultItem(r)): HTMLElement {
  return rep.results.length
    ? h("ul", { class: "diag-results", data: { testid: "diag-results" }, "aria-label": "Check results" }, sortResults(rep.results).map(item))
    : h("p", { class: "muted", data: { testid: "diag-results" } }, "The agent reported no results.");
}

interface Shown {
  report: CheckReport;
  id?: bigint | undefined;
  time?: Date | undefined;
  technician?: string | undefined;
  fresh: boolean; // just run (not picked from the history)
}

export interface DiagPanel {
  el: HTMLElement;
  /** shown is called when the tab becomes visible (the history loads the first time). */
  shown(): void;
  /** setDevice tells the panel the device's online state. */
  setDevice(d: Device): void;
}

/** diagnosticsPanel builds the Diagnostics tab of device id. */
export function diagnosticsPanel(session: Session, id: string, life: AbortSignal): DiagPanel {
  let loaded = false;
  let deviceName = id;
  let running = false;
  let current: Shown | undefined;
  const known = new Set<string>(); // check names seen in any report

  const offline = h("div");
  const budgetID = uid("diag-budget");
  const budget = h("select", { id: budgetID, data: { testid: "diag-budget" } },
    budgetChoices.map((s) => h("option", { value: String(s), selected: s === 5 }, `${s} s`)));
  const triageBtn = h("button", { type: "button", class: "btn btn-primary", data: { testid: "diag-run-triage" } }, "Run triage");
  const checkID = uid("diag-check");
  const checkSel = h("select", { id: checkID, data: { testid: "diag-check" }, disabled: true });
  const checkBtn = h("button", { type: "button", class: "btn", data: { testid: "diag-run-check" }, disabled: true }, "Run check");
  const status = h("div", { class: "diag-status", data: { testid: "diag-status" } });
  const reportSlot = h("div", { class: "diag-report" },
    h("p", { class: "muted", data: { testid: "diag-empty" } }, "No report shown yet. Run a triage to check the network, disks, memory, CPU, services, updates and time on this device."));
  const historySlot = h("div", null, h("p", { class: "loading" }, "Loading reports…"));

  const el = h("div", { class: "diag" },
    offline,
    h("section", { class: "card", "aria-labelledby": `${budgetID}-title` },
      h("div", { class: "card-head" }, h("h2", { id: `${budgetID}-title` }, "Checks")),
      h("div", { class: "diag-controls" },
        h("div", { class: "filter diag-budget" }, h("label", { for: budgetID }, "Budget"), budget),
        triageBtn,
        h("span", { class: "diag-or", "aria-hidden": "true" }, "or"),
        h("div", { class: "filter diag-one" }, h("label", { for: checkID }, "One check"), checkSel),
        checkBtn,
      ),
      status,
      reportSlot,
    ),
    // Commands and actions take tier 2 (the relay refuses them anyway):
    // lower tiers see why instead of buttons that cannot work.
    ...(session.me.role >= Role.TIER2
      ? [commandPane(id, life), actionsCard(id, life, () => deviceName)]
      : [h("section", { class: "card", data: { testid: "tier-note" } }, h("h2", null, "Commands and actions"),
        h("p", { class: "muted" }, "Commands and remediation actions take Tier 2 or higher; your role is Tier 1. Ask an admin to change your role."))]),
    h("section", { class: "card" }, h("h2", null, "Reports"), historySlot),
  );

  function learn(rep: CheckReport | undefined): void {
    if (!rep) return;
    const before = known.size;
    for (const r of rep.results) if (r.name) known.add(r.name);
    if (known.size === before && checkSel.options.length) return;
    const keep = checkSel.value;
    replace(checkSel, known.size
      ? [...known].sort().map((n) => h("option", { value: n, selected: n === keep }, n))
      : h("option", { value: "" }, "Run a triage first"));
    checkSel.disabled = known.size === 0 || running;
    checkBtn.disabled = known.size === 0 || running;
  }

  function setRunning(on: boolean): void {
    running = on;
    triageBtn.disabled = on;
    budget.disabled = on;
    checkSel.disabled = on || known.size === 0;
    checkBtn.disabled = on || known.size === 0;
    reportSlot.classList.toggle("is-loading", on);
    if (on) reportSlot.setAttribute("aria-busy", "true");
    else reportSlot.removeAttribute("aria-busy");
    replace(triageBtn, on ? "Running…" : "Run triage");
    for (const b of reportSlot.querySelectorAll<HTMLButtonElement>("button[data-testid=diag-rerun]")) b.disabled = on;
  }

  // --- results --------------------------------------------------------------
  const resultItem = (r: CheckResult) => checkResultItem(r, () => void run([r.name]), running);

  function drawReport(s: Shown): void {
    current = s;
    const rep = s.report;
    const k = statusKey(rep.overall);
    const started = tsDate(rep.started) ?? s.time;
    const n = rep.results.length;
    const what = known.size > 0 && n < known.size && n <= 3 ? rep.results.map((r) => r.name).join(", ") : plural(n, "check");
    const when = s.fresh ? `just now${started ? ` (${fmtTime(started)})` : ""}` : fmtTime(s.time ?? started);
    replace(reportSlot,
      h("div", { class: `diag-overall diag-overall-${k}`, data: { testid: "diag-overall", status: k, reportId: s.id?.toString() } },
        checkBadge(k, true),
        h("div", { class: "diag-overall-text" },
          h("p", { class: "diag-overall-title" }, `Overall: ${statusWords[k]}`),
          h("p", { class: "muted" },
            `${what} in ${fmtDuration(durationMs(rep.duration))}`, " · ",
            s.fresh ? "run " : "report from ", when,
            s.technician ? ` by ${s.technician}` : "",
            n ? ` · ${countLine(rep.results)}` : ""),
        ),
      ),
      checkResultsList(rep, resultItem),
    );
    markHistory();
  }

  // --- running --------------------------------------------------------------
  async function run(checks: string[]): Promise<void> {
    if (running) return;
    const secs = Number(budget.value) || 5;
    const trigger = document.activeElement;
    setRunning(true);
    const label = checks.length ? `Running ${checks.join(", ")}` : "Running the triage (all checks)";
    const bar = h("progress", { class: "diag-progress", max: String(secs * 10), value: "0", "aria-label": "Time used of the budget" });
    const elapsed = h("span", { class: "muted", "aria-hidden": "true" });
    replace(status, h("div", { class: "diag-running", role: "status" },
      h("p", { class: "loading" }, `${label} within a ${secs} s budget…`), bar, elapsed));
    const t0 = performance.now();
    const tick = setInterval(() => {
      const s = (performance.now() - t0) / 1000;
      bar.value = Math.min(secs * 10, Math.round(s * 10));
      setText(elapsed, `${s.toFixed(1)} s of ${secs} s`);
    }, 100);
    try {
      const resp = await client.runChecks({ deviceId: id, checks, budget: durationFromMs(secs * 1000) }, { signal: life });
      if (!resp.report) throw new Error("the relay answered without a report");
      learn(resp.report);
      replace(status);
      drawReport({ report: resp.report, id: resp.reportId, fresh: true, technician: session.me.name });
      void loadHistory();
    } catch (err) {
      if (isCanceled(err) || life.aborted) return;
      checkSession(err);
      replace(status, notice("error", checks.length ? "Could not run the check. " : "Could not run the triage. ", explain(err)));
    } finally {
      clearInterval(tick);
      if (!life.aborted) {
        setRunning(false);
        // A button disabled while it had focus drops it: give it back.
        if (!document.activeElement || document.activeElement === document.body) {
          (trigger instanceof HTMLElement && trigger.isConnected ? trigger : triageBtn).focus();
        }
      }
    }
  }

  triageBtn.addEventListener("click", () => void run([]));
  checkBtn.addEventListener("click", () => {
    if (checkSel.value) void run([checkSel.value]);
  });

  // --- history --------------------------------------------------------------
  let historyRows: Array<{ tr: HTMLTableRowElement; id: bigint }> = [];

  function markHistory(): void {
    for (const r of historyRows) {
      const on = current?.id !== undefined && r.id === current.id;
      r.tr.classList.toggle("is-current", on);
      if (on) r.tr.setAttribute("aria-current", "true");
      else r.tr.removeAttribute("aria-current");
    }
  }

  function drawHistory(reps: StoredCheckReport[]): void {
    historyRows = [];
    const rows = reps.map((s) => {
      const rep = s.report;
      const k = statusKey(rep?.overall ?? 0);
      const n = rep?.results.length ?? 0;
      const time = tsDate(s.time);
      const view = h("button", { type: "button", class: "link", data: { testid: "diag-history-view" } }, "View");
      view.addEventListener("click", () => {
        if (!rep) return;
        learn(rep);
        replace(status);
        drawReport({ report: rep, id: s.id, time, technician: s.technician, fresh: false });
        reportSlot.scrollIntoView({ block: "nearest" });
      });
      const names = rep && n <= 3 && known.size > 0 && n < known.size ? rep.results.map((r) => r.name).join(", ") : `Triage, ${plural(n, "check")}`;
      const tr = h("tr", { data: { testid: "diag-history-row", reportId: s.id.toString(), status: k } },
        h("td", { class: "nowrap" }, fmtTime(time)),
        h("td", null, h("span", { class: "clip" }, s.technician || "–")),
        h("td", null, checkBadge(k)),
        h("td", null, h("span", { class: "clip" }, names)),
        h("td", { class: "nowrap" }, rep ? fmtDuration(durationMs(rep.duration)) : "–"),
        h("td", null, view),
      );
      historyRows.push({ tr, id: s.id });
      return tr;
    });
    replace(historySlot, h("div", { class: "table-scroll" },
      h("table", { class: "grid compact diag-history", data: { testid: "diag-history" }, "aria-label": "Stored diagnostics reports" },
        h("thead", null, h("tr", null, ["Time", "Technician", "Overall", "Checks", "Took", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", null, rows.length ? rows : h("tr", { class: "state-row" }, h("td", { colspan: 6 },
          h("p", { class: "muted", data: { testid: "diag-history-empty" } }, "No reports yet: every triage or check run is stored here.")))),
      )),
      reps.length >= historyLimit ? h("p", { class: "muted" }, `Showing the latest ${historyLimit} reports.`) : null,
    );
    markHistory();
  }

  async function loadHistory(): Promise<void> {
    try {
      const resp = await client.listCheckReports({ deviceId: id, limit: historyLimit }, { signal: life });
      for (const s of resp.reports) learn(s.report);
      drawHistory(resp.reports);
      // Show the latest report until one is run or picked.
      const last = resp.reports[0];
      if (!current && last?.report && !running) {
        drawReport({ report: last.report, id: last.id, time: tsDate(last.time), technician: last.technician, fresh: false });
      }
    } catch (err) {
      if (isCanceled(err) || life.aborted) return;
      checkSession(err);
      replace(historySlot, notice("error", "Could not load the stored reports. ", explain(err)));
    }
  }

  return {
    el,
    shown() {
      if (loaded) return;
      loaded = true;
      void loadHistory();
    },
    setDevice(d: Device) {
      deviceName = d.hostname || d.id;
      replace(offline, d.online || d.revoked ? null : notice("warn", h("span", { data: { testid: "diag-offline" } },
        "This device is offline: checks, commands and actions need it connected.")));
      if (d.revoked) replace(offline, notice("warn", "This device has been revoked: it can no longer run checks or commands."));
    },
  };
}
