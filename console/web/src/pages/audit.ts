// The audit page (admins): the relay's audit log, newest first, filtered
// by actor, target (device), action and time like `deskside audit`, paged
// by record number, and a button that has the relay verify the whole
// chain against its key (`deskside audit verify`). Filters and the page
// cursor live in the URL hash query. Every string in a record came from a
// technician or an agent: it is only ever a text node (dom.ts).

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { checkSession, client, explain, isCanceled } from "../api";
import { h, replace, uid } from "../dom";
import { fmtCount, fmtTime, plural, tsDate } from "../format";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AuditEvent, ListAuditEventsRequestSchema } from "../gen/deskside/v1/console_pb";
import { code, notice, type Page, type Session } from "../page";

export const auditPageSize = 50;

/** AuditFilter is the page's state, as in the URL query. */
export interface AuditFilter {
  actor: string;
  device: string;
  action: string;
  /** since and until are datetime-local values ("2026-12-01T09:00"), local time. */
  since: string;
  until: string;
  /** before is the record number a page continues from; 0 for the newest. */
  before: number;
}

const keys = ["actor", "device", "action", "since", "until"] as const;

export function parseAuditQuery(query: string): AuditFilter {
  const q = new URLSearchParams(query);
  const before = Number(q.get("before") ?? "0");
  return {
    actor: q.get("actor") ?? "", device: q.get("device") ?? "", action: q.get("action") ?? "",
    since: q.get("since") ?? "", until: q.get("until") ?? "",
    before: Number.isSafeInteger(before) && before > 0 ? before : 0,
  };
}

export function auditQueryString(f: AuditFilter): string {
  const q = new URLSearchParams();
  for (const k of keys) if (f[k]) q.set(k, f[k]);
  if (f.before > 0) q.set("before", String(f.before));
  return q.toString();
}

function localTime(v: string): Date | undefined {
  if (!v) return undefined;
  const d = new Date(v); // datetime-local without a zone: local time
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function request(f: AuditFilter): MessageInitShape<typeof ListAuditEventsRequestSchema> {
  const since = localTime(f.since), until = localTime(f.until);
  return {
    limit: auditPageSize, actor: f.actor.trim(), device: f.device.trim(), action: f.action.trim(), before: BigInt(f.before),
    since: since ? timestampFromDate(since) : undefined,
    until: until ? timestampFromDate(until) : undefined,
  };
}

export function auditPage(_session: Session, query: string): Page {
  const life = new AbortController();
  const filter = parseAuditQuery(query);

  const field = (label: string, value: string, testid: string, type = "text", hint = "") => {
    const id = uid(testid);
    const input = h("input", { id, type, value, maxlength: 256, autocomplete: "off", spellcheck: "false", placeholder: hint || undefined, data: { testid } });
    return { input, el: h("div", { class: type === "text" ? "filter" : "filter filter-when" }, h("label", { for: id }, label), input) };
  };
  const actorF = field("Actor", filter.actor, "audit-actor", "text", "alice");
  const deviceF = field("Device or target", filter.device, "audit-device", "text", "device id");
  const actionF = field("Action", filter.action, "audit-action", "text", "desktop.*");
  const sinceF = field("Since", filter.since, "audit-since", "datetime-local");
  const untilF = field("Until", filter.until, "audit-until", "datetime-local");
  const clearBtn = h("button", { type: "button", class: "btn btn-quiet", data: { testid: "audit-clear" } }, "Clear filters");
  const applyBtn = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "audit-apply" } }, "Filter");

  const go = (f: AuditFilter) => {
    const q = auditQueryString(f);
    location.hash = "#/audit" + (q ? "?" + q : "");
  };
  const readInputs = (): AuditFilter => ({
    actor: actorF.input.value, device: deviceF.input.value, action: actionF.input.value,
    since: sinceF.input.value, until: untilF.input.value, before: 0,
  });
  clearBtn.addEventListener("click", () => go({ actor: "", device: "", action: "", since: "", until: "", before: 0 }));

  const status = h("div", { class: "page-status" });
  const tbody = h("tbody");
  const table = h("table", { class: "grid audit", data: { testid: "audit-table" }, "aria-label": "Audit log" },
    h("thead", null, h("tr", null,
      h("th", { scope: "col", class: "num" }, "Record"),
      h("th", { scope: "col" }, "Time"),
      h("th", { scope: "col" }, "Actor"),
      h("th", { scope: "col" }, "Action"),
      h("th", { scope: "col" }, "Target"),
      h("th", { scope: "col" }, "Detail"),
    )),
    tbody,
  );
  const newest = h("button", { type: "button", class: "btn", data: { testid: "audit-newest" } }, "← Newest");
  const older = h("button", { type: "button", class: "btn", data: { testid: "audit-older" } }, "Older →");
  const showing = h("span", { class: "showing", "aria-live": "polite", data: { testid: "audit-showing" } });
  const pager = h("nav", { class: "pager", "aria-label": "Pages" }, newest, showing, older);
  let olderThan = 0; // the oldest record shown
  newest.addEventListener("click", () => go({ ...filter, before: 0 }));
  older.addEventListener("click", () => go({ ...filter, before: olderThan }));
  newest.disabled = filter.before === 0;
  older.disabled = true;
  pager.hidden = true;

  const verifyBtn = h("button", { type: "button", class: "btn", data: { testid: "audit-verify" } }, "Verify the log");
  const verifyOut = h("div", { class: "action-status", data: { testid: "audit-verify-result" } });
  verifyBtn.addEventListener("click", () => void verify());

  const el = h("div", { class: "page page-audit" },
    h("div", { class: "page-head" },
      h("div", null,
        h("h1", null, "Audit log"),
        h("p", { class: "muted" }, "Every privileged action, newest first. Each record is chained to the one before and sealed with the relay's key."),
      ),
      h("div", { class: "page-actions" }, verifyBtn),
    ),
    verifyOut,
    h("form", { class: "toolbar", role: "search", on: { submit: (e) => { e.preventDefault(); go(readInputs()); } } },
      actorF.el, deviceF.el, actionF.el, sinceF.el, untilF.el,
      h("div", { class: "filter filter-clear" }, applyBtn),
      h("div", { class: "filter filter-clear" }, clearBtn),
    ),
    status,
    h("div", { class: "table-wrap table-scroll" }, table),
    pager,
  );

  function row(e: AuditEvent): HTMLTableRowElement {
    const seq = String(e.seq);
    return h("tr", { data: { testid: "audit-row", seq } },
      h("td", { class: "num" }, seq),
      h("td", { class: "audit-time" }, h("time", { datetime: tsDate(e.time)?.toISOString() ?? "" }, fmtTime(tsDate(e.time)))),
      h("td", null, h("span", { class: "clip", title: e.actor }, e.actor || "–")),
      h("td", null, code(e.action)),
      h("td", null, h("span", { class: "clip", title: e.target }, e.target || "–")),
      h("td", { class: "audit-detail" }, h("span", { class: "wrap" }, e.detail)),
    );
  }

  async function load(): Promise<void> {
    replace(status, h("p", { class: "muted", role: "status" }, "Loading…"));
    try {
      const resp = await client.listAuditEvents(request(filter), { signal: life.signal });
      const evs = resp.events;
      replace(tbody, ...evs.map(row));
      replace(status);
      if (evs.length === 0) {
        const filtered = keys.some((k) => filter[k]) || filter.before > 0;
        replace(status, notice("info", filtered ? "No audit records match these filters." : "The audit log is empty."));
      }
      const last = evs[evs.length - 1];
      older.disabled = evs.length < auditPageSize || !last;
      if (last) olderThan = Number(last.seq);
      pager.hidden = evs.length === 0 && filter.before === 0;
      replace(showing, evs.length === 0 ? "" : `Records ${evs[0]!.seq}–${last!.seq}`);
    } catch (err) {
      if (isCanceled(err) || life.signal.aborted) return;
      checkSession(err);
      replace(status, notice("error", explain(err)));
    }
  }

  async function verify(): Promise<void> {
    verifyBtn.disabled = true;
    replace(verifyOut, h("p", { class: "muted", role: "status" }, "Verifying…"));
    try {
      for await (const m of client.verifyAuditLog({}, { signal: life.signal })) {
        if (!m.done) {
          replace(verifyOut, h("p", { class: "muted", role: "status" }, `Verifying… ${fmtCount(m.checked)} records so far.`));
          continue;
        }
        const p = m.problem;
        if (p) {
          const where = h("a", { href: "#/audit?" + auditQueryString({ actor: "", device: "", action: "", since: "", until: "", before: Number(p.seq) + 5 }) }, "the records around it");
          replace(verifyOut, notice("error",
            `The audit log does not verify: record ${p.seq}${p.time ? " (" + fmtTime(tsDate(p.time)) + ")" : ""} was ${p.kind}: ${p.detail}. `,
            `${plural(Number(m.checked), "record")} verified before it. Keep a copy of the database as it is; see `, where, "."));
        } else if (m.checked === 0n) {
          replace(verifyOut, notice("ok", "The audit log is empty."));
        } else {
          const unkeyed = m.unkeyed > 0n ? `; ${plural(Number(m.unkeyed), "record")} before it are unkeyed (written before the key existed)` : "";
          replace(verifyOut, notice("ok",
            `${plural(Number(m.checked), "record")} verified, the newest record ${m.lastSeq} (${fmtTime(tsDate(m.lastTime))}). `,
            `Sealed with the relay's key ${m.keyId} from record ${m.anchor}${unkeyed}.`));
        }
      }
    } catch (err) {
      if (isCanceled(err) || life.signal.aborted) return;
      checkSession(err);
      replace(verifyOut, notice("error", explain(err)));
    } finally {
      verifyBtn.disabled = false;
    }
  }

  void load();
  return { el, title: "Audit log", dispose: () => life.abort() };
}
