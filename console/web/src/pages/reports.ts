// The reports page (tier 3 and admins): the help-desk report of issue 12
// for a period, from ReportService (package relay/reports defines every
// figure). #/reports?from=YYYY-MM-DD&to=YYYY-MM-DD, both UTC days, to
// included; default the last 30 days. Charts for what people would rather
// look at (per day, per category, per tier, device models, OS versions),
// tables for the rest; each section has a CSV button that downloads the
// relay's CSV of it (ExportReportCsv, audited). Names (technicians,
// categories, models, titles) are only ever text nodes (dom.ts).

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { checkSession, explain, isCanceled, reportClient } from "../api";
import { barChart } from "../chart";
import { h, replace, uid } from "../dom";
import { fmtCount, plural } from "../format";
import type { Report, ReportCount, ReportTimes } from "../gen/deskside/v1/reports_pb";
import { notice, type Page } from "../page";
import { download } from "./export";

const dayMs = 86_400_000;

/** ReportPeriod is the page's period: UTC dates, to included. */
export interface ReportPeriod {
  from: string;
  to: string;
}

const isDate = (v: string | null): v is string => v !== null && /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(v + "T00:00:00Z"));

const ymd = (t: number) => new Date(t).toISOString().slice(0, 10);

/** parseReportQuery reads the period from the URL query (default: the last 30 days, today included). */
export function parseReportQuery(query: string, now: number): ReportPeriod {
  const q = new URLSearchParams(query);
  const today = ymd(now);
  const to = isDate(q.get("to")) ? q.get("to")! : today;
  const from = isDate(q.get("from")) ? q.get("from")! : ymd(Date.parse(to + "T00:00:00Z") - 29 * dayMs);
  return { from, to };
}

/** dur formats whole seconds compactly: 45s, 12m, 3h05m, 2d4h. */
export function dur(secs: number): string {
  if (secs <= 0) return "–";
  if (secs < 60) return `${secs}s`;
  if (secs < 3600) return `${Math.round(secs / 60)}m`;
  if (secs < 48 * 3600) return `${Math.floor(secs / 3600)}h${String(Math.floor((secs % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(secs / 86400)}d${Math.floor((secs % 86400) / 3600)}h`;
}

const rate = (r: number) => `${(100 * r).toFixed(1)}%`;

function table(label: string, testid: string, head: string[], rows: string[][]): HTMLElement {
  if (rows.length === 0) return h("p", { class: "muted" }, "Nothing in this period.");
  return h("div", { class: "table-scroll" }, h("table", { class: "grid", "aria-label": label, data: { testid } },
    h("thead", null, h("tr", null, ...head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", null, ...rows.map((r) => h("tr", null, ...r.map((c) => h("td", null, c)))))));
}

/** reportsPage shows the report for the period in query. */
export function reportsPage(query: string): Page {
  const life = new AbortController();
  const period = parseReportQuery(query, Date.now());
  const fromID = uid("rep-from"), toID = uid("rep-to");
  const fromIn = h("input", { id: fromID, type: "date", value: period.from, required: true, data: { testid: "report-from" } });
  const toIn = h("input", { id: toID, type: "date", value: period.to, required: true, data: { testid: "report-to" } });
  const form = h("form", { class: "toolbar" },
    h("div", { class: "filter" }, h("label", { for: fromID }, "From"), fromIn),
    h("div", { class: "filter" }, h("label", { for: toID }, "To (included)"), toIn),
    h("button", { type: "submit", class: "btn btn-primary", data: { testid: "report-apply" } }, "Show"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = "#/reports?" + new URLSearchParams({ from: fromIn.value, to: toIn.value }).toString();
  });
  const status = h("div", { "aria-live": "polite" });
  const body = h("div", { data: { testid: "report-body" } }, h("p", { class: "muted" }, "Loading…"));
  const el = h("div", { class: "page reports" },
    h("h1", null, "Reports"),
    h("p", { class: "muted" }, "Days are UTC days. Times are medians and 90th percentiles (nearest rank) over tickets opened in the period."),
    form, status, body);

  const from = new Date(period.from + "T00:00:00Z");
  const to = new Date(Date.parse(period.to + "T00:00:00Z") + dayMs);
  const span = { from: timestampFromDate(from), to: timestampFromDate(to) };

  const csvButton = (section: string, what: string) => {
    const b = h("button", { type: "button", class: "btn btn-quiet", data: { testid: "csv-" + section } }, "CSV");
    b.setAttribute("aria-label", `Download ${what} as CSV`);
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        const r = await reportClient.exportReportCsv({ ...span, section }, { signal: life.signal });
        download(r.filename, "text/csv;charset=utf-8", r.csv);
      } catch (err) {
        if (isCanceled(err) || life.signal.aborted) return;
        checkSession(err);
        replace(status, notice("error", explain(err)));
      } finally {
        b.disabled = false;
      }
    });
    return b;
  };
  const section = (title: string, sec: string, testid: string, ...children: Array<Node | string>) =>
    h("section", { class: "card", data: { testid } },
      h("h2", { class: "report-head" }, title, " ", csvButton(sec, title.toLowerCase())), ...children);

  const timesRows = (r: Report) => [r.overall, ...r.byPriority].filter((t): t is ReportTimes => !!t).map((t) => [
    t.priorityName, fmtCount(t.firstResponse?.n ?? 0), dur(t.firstResponse?.medianSeconds ?? 0), dur(t.firstResponse?.p90Seconds ?? 0),
    fmtCount(t.resolution?.n ?? 0), dur(t.resolution?.medianSeconds ?? 0), dur(t.resolution?.p90Seconds ?? 0)]);
  const countChart = (title: string, cs: ReportCount[]) =>
    barChart({ title, labels: cs.map((c) => c.name), series: [{ label: "tickets", cls: "s1", values: cs.map((c) => c.tickets) }], yTick: intTick, unit: "tickets", integer: true, labelEvery: 1 });

  const draw = (r: Report) => {
    replace(body,
      h("p", { data: { testid: "report-summary" } }, `${plural(r.ticketsOpened, "ticket")} opened, ${plural(r.resolutions, "resolution")} from ${period.from} to ${period.to}.`),
      section("Tickets per day", "days", "report-days",
        barChart({ title: "Tickets opened and resolved per day", labels: r.days.map((d) => d.date.slice(5)),
          series: [{ label: "opened", cls: "s1", values: r.days.map((d) => d.opened) }, { label: "resolved", cls: "s2", values: r.days.map((d) => d.resolved) }],
          yTick: intTick, unit: "tickets", integer: true }),
        legend()),
      section("Per category", "categories", "report-categories",
        barChart({ title: "Tickets opened and resolved per category", labels: r.categories.map((c) => c.name || "(none)"),
          series: [{ label: "opened", cls: "s1", values: r.categories.map((c) => c.opened) }, { label: "resolved", cls: "s2", values: r.categories.map((c) => c.resolved) }],
          yTick: intTick, unit: "tickets", integer: true, labelEvery: 1 }),
        legend()),
      section("Response and resolution times", "times", "report-times",
        table("Times to first response and resolution", "report-times-table",
          ["Priority", "Responded", "First response median", "p90", "Resolved", "Resolution median", "p90"], timesRows(r))),
      section("Technicians", "technicians", "report-technicians",
        table("Technicians", "report-tech-table", ["Technician", "Resolved", "Median handling", "Reopened (14 days)", "Reopen rate", "Escalations"],
          r.technicians.map((t) => [t.name, fmtCount(t.resolved), dur(t.medianHandlingSeconds), fmtCount(t.reopened), rate(t.reopenRate), fmtCount(t.escalations)]))),
      section("Escalation per tier", "tiers", "report-tiers",
        barChart({ title: "Escalation rate per tier", labels: r.tiers.map((t) => `Tier ${t.tier}`),
          series: [{ label: "escalated", cls: "s3", values: r.tiers.map((t) => 100 * t.rate) }], yTick: (v) => v.toFixed(0), unit: "%", labelEvery: 1, integer: true }),
        table("Escalation per tier", "report-tier-table", ["Tier", "Tickets", "Escalated", "Rate"],
          r.tiers.map((t) => [String(t.tier), fmtCount(t.tickets), fmtCount(t.escalated), rate(t.rate)]))),
      section("Top device models", "devices", "report-models", countChart("Tickets per device model", r.deviceModels)),
      section("Top OS versions", "os", "report-os", countChart("Tickets per OS version", r.osVersions)),
      section("Knowledge-base articles that resolved tickets", "articles", "report-articles",
        table("Articles", "report-article-table", ["Article", "Tickets resolved"],
          r.articles.map((a) => [a.title, fmtCount(a.tickets)]))),
    );
  };

  void (async () => {
    if (!(to.getTime() > from.getTime())) {
      replace(body, notice("error", "The period is empty: pick a From date on or before the To date."));
      return;
    }
    try {
      const res = await reportClient.getReport(span, { signal: life.signal });
      if (res.report) draw(res.report);
    } catch (err) {
      if (isCanceled(err) || life.signal.aborted) return;
      checkSession(err);
      replace(body, notice("error", explain(err)));
    }
  })();
  return { el, title: "Reports", dispose: () => life.abort() };
}

const intTick = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));

function legend(): HTMLElement {
  return h("p", { class: "chart-legend" },
    h("span", { class: "legend-swatch s1", "aria-hidden": "true" }), " opened ",
    h("span", { class: "legend-swatch s2", "aria-hidden": "true" }), " resolved");
}
