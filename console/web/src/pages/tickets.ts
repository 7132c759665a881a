// Tickets: the help desk's queues, one ticket, and the form that files one.
//   #/tickets?queue=mine|tier|unassigned|all&status=…&priority=…&category=…&q=…
//                         a queue, filtered and searched, kept live by WatchTickets
//   #/tickets/new?device=ID   the form (the device set when opened from a device page)
//   #/tickets/DS-7K3Q     one ticket: header, actions (claim, assign from a
//                         picker, status, tier, merge, priority and category,
//                         link a record), timeline, reply, snapshot
// A "DS-…" code typed into the search box jumps to that ticket. What a
// tier may not do to a ticket (relay/tickets: work it only from its tier
// up, or as its assignee; notes are open to all) is not offered, nor a
// kind of record to link that the tier cannot make. The queue shows each
// device by hostname (the list carries it) and a count that stops at
// "10,000+". All ticket text is the requester's or a technician's: only
// ever text (dom.ts).

import { checkSession, client, explain, isCanceled, techClient, ticketClient } from "../api";
import { debounce, field, h, replace, setText, uid } from "../dom";
import { fmtTime, plural, roleLabel, tsDate } from "../format";
import { Role } from "../gen/deskside/v1/console_pb";
import {
  TicketEntryKind, TicketPriority, TicketQueue, TicketStatus,
  type CompareTicketSnapshotResponse, type ListTicketsResponse, type Ticket, type TicketEntry,
} from "../gen/deskside/v1/tickets_pb";
import type { Assignee } from "../gen/deskside/v1/technicians_pb";
import { setRelTime, watchTickets, type LiveState } from "../live";
import { chatPanel } from "../chat";
import { mailOffNotice } from "../mailstate";
import { card, kvList, notice, type Page, type Session } from "../page";
import { ticketFiles } from "./ticketfiles";
import { entryValue, findCode, fromRequester, requesterLogin, nextStatuses, priorityLabel, slaNext, slaTarget, statusLabel, activeStatus, type SlaView } from "../ticketfmt";

const queues: ReadonlyArray<[string, string, TicketQueue]> = [
  ["mine", "Mine", TicketQueue.MINE],
  ["tier", "My tier", TicketQueue.TIER],
  ["unassigned", "Unassigned", TicketQueue.UNASSIGNED],
  ["all", "All", TicketQueue.ALL],
];
const statuses = [TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING_USER, TicketStatus.RESOLVED, TicketStatus.CLOSED];
const priorities = [TicketPriority.LOW, TicketPriority.NORMAL, TicketPriority.HIGH, TicketPriority.URGENT];
const pageSize = 100;

/** myTier is the technician's tier as the relay counts it (admins: 3). */
function myTier(s: Session): number {
  return s.me.role >= Role.TIER3 ? 3 : s.me.role;
}

/** canWork mirrors relay/tickets: admins, tier ≥ the ticket's, or its assignee. */
function canWork(s: Session, t: Ticket): boolean {
  return s.me.role >= Role.ADMIN || myTier(s) >= t.tier || (t.assignee !== "" && t.assignee === s.me.name);
}

/** linkKinds are the records a technician's tier can make, to link
 * (relay/tickets linkActions): tier 1 runs diagnostics and view-only
 * sessions; tier 2 adds commands and actions. */
function linkKinds(s: Session): Array<[string, string]> {
  const out: Array<[string, string]> = [["diagnostics", "diagnostics run"], ["session", "remote session"]];
  if (s.me.role >= Role.TIER2) out.push(["command", "command"], ["action", "action"]);
  return out;
}

/** assignees lists who a ticket of tier may be assigned to (one call per
 * tier while the console is open). */
const assigneeCache = new Map<number, Promise<Assignee[]>>();
function assignees(tier: number): Promise<Assignee[]> {
  let p = assigneeCache.get(tier);
  if (!p) {
    p = techClient.listAssignees({ tier }).then((r) => r.assignees);
    assigneeCache.set(tier, p);
    // A failed or stale list is asked for again next time.
    p.catch(() => assigneeCache.delete(tier));
    setTimeout(() => assigneeCache.delete(tier), 60_000);
  }
  return p;
}

function statusBadge(t: Ticket): HTMLElement {
  return h("span", { class: `tk-status tk-status-${TicketStatus[t.status]?.toLowerCase() ?? "x"}`, data: { testid: "tk-status" } }, statusLabel(t.status));
}

function priorityBadge(t: Ticket): HTMLElement {
  return h("span", { class: `tk-prio tk-prio-${TicketPriority[t.priority]?.toLowerCase() ?? "x"}` }, priorityLabel(t.priority));
}

function slaEl(v: SlaView, testid: string): HTMLElement {
  const el = h("span", { class: "tk-sla", data: { testid } });
  drawSla(el, v);
  return el;
}

function drawSla(el: HTMLElement, v: SlaView): void {
  setText(el, v.text);
  el.classList.toggle("tk-sla-breached", v.breached);
  if (v.breached) el.title = "SLA target missed";
  else el.removeAttribute("title");
}

function codeLink(code: string): HTMLElement {
  return h("a", { href: "#/tickets/" + encodeURIComponent(code), class: "tk-code", data: { testid: "tk-link" } }, code);
}

/** ticketsPage routes within the tickets; rest is the path after "/tickets". */
export function ticketsPage(session: Session, rest: string, query: string): Page {
  if (rest === "/new") return newTicketPage(query);
  const m = /^\/([^/]+)$/.exec(rest);
  if (m) {
    let raw = m[1]!;
    try {
      raw = decodeURIComponent(raw);
    } catch { /* keep it as typed */ }
    return ticketPage(session, raw);
  }
  return queuePage(session, query);
}

// --- the queues ------------------------------------------------------------

/** emptyText says why a queue is empty and where the tickets are. */
function emptyText(session: Session, f: Filter): Array<string | HTMLElement> | string {
  const all = h("a", { href: "#/tickets?" + filterQuery({ ...f, queue: "all" }) }, "All");
  switch (f.queue) {
    case "tier":
      return [`No tickets in the tier ${myTier(session)} queue match. `, all, " shows every tier."];
    case "mine":
      return ["Nothing here is assigned to you. ", all, " shows every ticket; Claim on a ticket takes it."];
    case "unassigned":
      return ["Every ticket here has an assignee. ", all, " shows every ticket."];
  }
  return "No tickets match.";
}

interface Filter {
  queue: string;
  status: string; // "" active, "any", or a TicketStatus name
  priority: string;
  category: string;
  q: string;
}

function parseFilter(query: string): Filter {
  const p = new URLSearchParams(query);
  const queue = p.get("queue") ?? "tier";
  return {
    queue: queues.some(([k]) => k === queue) ? queue : "tier",
    status: p.get("status") ?? "", priority: p.get("priority") ?? "", category: p.get("category") ?? "", q: p.get("q") ?? "",
  };
}

function filterQuery(f: Filter): string {
  const p = new URLSearchParams({ queue: f.queue });
  for (const k of ["status", "priority", "category", "q"] as const) if (f[k]) p.set(k, f[k]);
  return p.toString();
}

/** listRequest is the ListTickets request of a filter's first limit tickets. */
function listRequest(cur: Filter, limit: number) {
  return {
    queue: queues.find(([k]) => k === cur.queue)![2],
    statuses: cur.status === "any" ? statuses : cur.status ? [TicketStatus[cur.status as keyof typeof TicketStatus]] : [],
    priorities: cur.priority ? [TicketPriority[cur.priority as keyof typeof TicketPriority]] : [],
    category: cur.category, search: cur.q, limit,
  };
}

// A queue's first page, asked for while the console checks its session
// (main.ts calls prefetchQueue at start-up when the address is a queue):
// the page then does not wait for WhoAmI's round trip before its own.
let prefetched: { key: string; res: Promise<ListTicketsResponse> } | undefined;

/** prefetchQueue starts loading the queue of query (the address's). */
export function prefetchQueue(query: string): void {
  const f = parseFilter(query);
  if (findCode(f.q)) return;
  performance.mark("tickets:list");
  const res = ticketClient.listTickets(listRequest(f, pageSize));
  res.catch(() => {}); // the page reports errors when it takes it; signed out: the sign-in page shows
  prefetched = { key: filterQuery(f), res };
  setTimeout(() => { if (prefetched?.res === res) prefetched = undefined; }, 10_000);
}

/** takePrefetched returns the prefetched page of filter f, once. */
function takePrefetched(f: Filter): Promise<ListTicketsResponse> | undefined {
  const p = prefetched;
  prefetched = undefined;
  return p && p.key === filterQuery(f) ? p.res : undefined;
}

function queuePage(session: Session, query: string): Page {
  const life = new AbortController();
  const f = parseFilter(query);
  let limit = pageSize;

  const tabs = h("nav", { class: "tabs", "aria-label": "Queues" }, h("div", { class: "tablist" }, queues.map(([k, label]) =>
    h("a", { href: "#/tickets?" + filterQuery({ ...f, queue: k }), class: "tab", "aria-current": k === f.queue ? "page" : undefined, data: { testid: `tk-queue-${k}` } },
      k === "tier" ? `${label} (${myTier(session)})` : label))));

  const sel = (label: string, testid: string, opts: Array<[string, string]>, v: string) => {
    const id = uid(testid);
    const s = h("select", { id, data: { testid } }, opts.map(([val, text]) => h("option", { value: val, selected: val === v }, text)));
    return { s, el: h("div", { class: "filter" }, h("label", { for: id }, label), s) };
  };
  const status = sel("Status", "tk-f-status", [["", "Active"], ...statuses.map((s): [string, string] => [TicketStatus[s], statusLabel(s)]), ["any", "Any"]], f.status);
  const prio = sel("Priority", "tk-f-priority", [["", "Any"], ...priorities.map((p): [string, string] => [TicketPriority[p], priorityLabel(p)])], f.priority);
  const catID = uid("tk-cat");
  const category = h("input", { id: catID, type: "text", value: f.category, maxlength: 64, autocomplete: "off", placeholder: "any", data: { testid: "tk-f-category" } });
  const searchID = uid("tk-q");
  const search = h("input", { id: searchID, type: "search", value: f.q, maxlength: 200, autocomplete: "off", placeholder: "words, or a code: DS-7K3Q", data: { testid: "tk-search" } });
  const form = h("form", { class: "toolbar", role: "search" },
    status.el, prio.el,
    h("div", { class: "filter" }, h("label", { for: catID }, "Category"), category),
    h("div", { class: "filter filter-search" }, h("label", { for: searchID }, "Search"), search));

  const liveEl = h("span", { class: "live", data: { testid: "tk-live" }, "aria-live": "polite" });
  const countEl = h("p", { class: "muted", data: { testid: "tk-count" } });
  const body = h("tbody");
  const table = h("div", { class: "table-scroll" }, h("table", { class: "grid tk-table", data: { testid: "tk-table" } },
    h("thead", null, h("tr", null, ["Code", "Subject", "Requester / device", "Priority", "Status", "Tier", "Assignee", "SLA", "Updated"].map((c) => h("th", { scope: "col" }, c)))),
    body));
  const more = h("button", { type: "button", class: "btn", hidden: true, data: { testid: "tk-more" } }, "Show more");
  const status_ = h("div", { class: "page-status", "aria-live": "polite" });

  const slaCells = new Map<HTMLElement, Ticket>();
  let shown = new Set<string>();
  let loaded = false;
  let renders = 0;

  const read = (): Filter => ({ queue: f.queue, status: status.s.value, priority: prio.s.value, category: category.value.trim(), q: search.value.trim() });

  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    const cur = read();
    try {
      const early = !loaded && limit === pageSize ? takePrefetched(cur) : undefined;
      if (!loaded && !early) performance.mark("tickets:list");
      const r = await (early ?? ticketClient.listTickets(listRequest(cur, limit), { signal: life.signal }));
      if (mine !== seq || life.signal.aborted) return;
      const first = !loaded;
      if (first) performance.mark("tickets:listed");
      draw(r.tickets, Number(r.total), r.totalCapped);
      // For the benchmark (console/webtest): when the list was first drawn,
      // and each redraw after a filter changed.
      renders++;
      document.body.dataset["ticketsRenders"] = String(renders);
      performance.mark(first ? "tickets:first-render" : "tickets:render");
    } catch (e) {
      if (isCanceled(e) || mine !== seq) return;
      checkSession(e);
      replace(status_, notice("error", explain(e)));
    }
  };

  const draw = (list: Ticket[], total: number, capped: boolean) => {
    replace(status_);
    const now = Date.now();
    slaCells.clear();
    const before = shown;
    shown = new Set(list.map((t) => t.code));
    replace(body, list.length ? list.map((t) => {
      const sla = slaEl(slaNext(t.sla, now), "tk-sla");
      slaCells.set(sla, t);
      const updated = h("time");
      setRelTime(updated, tsDate(t.updatedAt));
      const dev = t.requester?.deviceId ?? "";
      return h("tr", { class: loaded && !before.has(t.code) ? "tk-row tk-row-new" : "tk-row", data: { testid: "tk-row", code: t.code } },
        h("td", { class: "nowrap" }, codeLink(t.code)),
        h("td", null, field(t.subject)),
        h("td", null, field(t.requester?.name || t.requester?.email || ""),
          dev ? [" ", h("a", { href: "#/devices/" + encodeURIComponent(dev), class: "muted tk-dev", title: dev, data: { testid: "tk-dev" } },
            t.requester?.deviceHostname || "device")] : null),
        h("td", null, priorityBadge(t)),
        h("td", null, statusBadge(t)),
        h("td", { data: { testid: "tk-tier" } }, String(t.tier)),
        h("td", { data: { testid: "tk-assignee" } }, t.assignee || h("span", { class: "muted" }, "–")),
        h("td", { class: "nowrap" }, sla),
        h("td", { class: "nowrap" }, updated));
    }) : h("tr", { class: "state-row" }, h("td", { colspan: 9 }, h("p", { class: "muted", data: { testid: "tk-empty" } }, emptyText(session, f)))));
    loaded = true;
    // The relay counts up to 10,000: "100 tickets of 10,000+".
    const of = total.toLocaleString("en-US") + (capped ? "+" : "");
    setText(countEl, list.length < total || capped ? `${plural(list.length, "ticket")} of ${of}` : plural(total, "ticket"));
    more.hidden = list.length >= total && !capped;
  };

  const apply = () => {
    const cur = read();
    const code = findCode(cur.q);
    if (code) {
      location.hash = "#/tickets/" + code;
      return;
    }
    history.replaceState(null, "", "#/tickets?" + filterQuery(cur));
    for (const a of tabs.querySelectorAll<HTMLAnchorElement>("a.tab")) {
      const k = a.dataset["testid"]!.replace("tk-queue-", "");
      a.href = "#/tickets?" + filterQuery({ ...cur, queue: k });
    }
    limit = pageSize;
    void load();
  };
  const applySoon = debounce(apply, 250);
  for (const x of [status.s, prio.s]) x.addEventListener("change", apply);
  category.addEventListener("input", () => applySoon());
  search.addEventListener("input", () => applySoon());
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    applySoon.cancel();
    apply();
  });
  more.addEventListener("click", () => {
    limit += pageSize;
    void load();
  });

  // Live: any ticket event reloads the page of the queue shown (a new or
  // changed ticket may enter or leave it); bursts are folded together.
  const reloadSoon = debounce(() => void load(), 200);
  watchTickets(life.signal, {
    onTicket: () => reloadSoon(),
    onState(state: LiveState, detail?: string) {
      liveEl.className = `live live-${state}`;
      setText(liveEl, state === "live" ? "Live" : state === "stopped" ? "Not live" : state === "connecting" ? "Connecting…" : "Reconnecting…");
      liveEl.title = detail ?? (state === "live" ? "New and changed tickets appear as they happen" : "");
      liveEl.dataset["state"] = state;
    },
    onResync: () => reloadSoon(),
  });
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const [el, t] of slaCells) drawSla(el, slaNext(t.sla, now));
  }, 30_000);

  void load();
  return {
    title: "Tickets",
    el: h("div", { class: "page page-tickets", data: { testid: "tk-page" } },
      h("div", { class: "page-head" }, h("div", null, h("h1", null, "Tickets ", liveEl)),
        h("div", { class: "page-actions" }, h("a", { href: "#/tickets/new", class: "btn btn-primary", data: { testid: "tk-new" } }, "New ticket"))),
      tabs, form, status_, countEl, table, more),
    dispose: () => {
      clearInterval(ticker);
      applySoon.cancel();
      reloadSoon.cancel();
      life.abort();
    },
  };
}

// --- one ticket ------------------------------------------------------------

function entryView(e: TicketEntry): HTMLElement {
  // A Get help requester ("requester <alice>") is named by login, tagged.
  const who = fromRequester(e)
    ? h("span", null, h("strong", null, requesterLogin(e.author)), " ", h("span", { class: "tk-chat-tag tk-requester-tag" }, "requester"))
    : h("strong", null, e.author || "someone");
  const when = h("time", { class: "tk-when", title: fmtTime(tsDate(e.time)) }, fmtTime(tsDate(e.time)));
  let cls = "tk-entry";
  let head: Array<Node | string> = [];
  let body: HTMLElement | null = e.body ? h("p", { class: "tk-body" }, e.body) : null;
  const kindName = TicketEntryKind[e.kind]?.toLowerCase() ?? "other";
  switch (e.kind) {
    case TicketEntryKind.CREATED:
      head = [who, " filed the ticket"];
      break;
    case TicketEntryKind.REPLY:
      cls += " tk-reply";
      head = [who, " replied"];
      break;
    case TicketEntryKind.NOTE:
      cls += " tk-note";
      head = [who, " added an internal note ", h("span", { class: "tk-tag" }, "internal")];
      break;
    case TicketEntryKind.STATUS: {
      cls += " tk-change";
      head = [who, ` changed the status from ${entryValue(e.from)} to ${entryValue(e.to)}`];
      if (body) body = h("p", { class: "tk-body" }, "Reason: " + e.body);
      break;
    }
    case TicketEntryKind.TIER:
      cls += " tk-change";
      head = [who, Number(e.to) > Number(e.from) ? ` escalated from tier ${e.from} to tier ${e.to}` : ` de-escalated from tier ${e.from} to tier ${e.to}`];
      if (body) body = h("p", { class: "tk-body" }, "Reason: " + e.body);
      break;
    case TicketEntryKind.ASSIGNEE:
      cls += " tk-change";
      head = [who, e.to ? ` assigned it to ${e.to}` + (e.from ? ` (was ${e.from})` : "") : ` unassigned it (was ${e.from || "nobody"})`];
      break;
    case TicketEntryKind.PRIORITY: {
      cls += " tk-change";
      head = [who, ` changed the priority from ${entryValue(e.from)} to ${entryValue(e.to)}`];
      break;
    }
    case TicketEntryKind.CATEGORY:
      cls += " tk-change";
      head = [who, ` changed the category from ${e.from || "none"} to ${e.to || "none"}`];
      break;
    case TicketEntryKind.LINK: {
      cls += " tk-link";
      const l = e.link;
      head = [who, ` linked a ${l?.kind ?? "record"}: ${l?.action ?? ""}`];
      if (l?.target) head.push(" on ", h("a", { href: "#/devices/" + encodeURIComponent(l.target) }, l.target));
      if (l) head.push(h("span", { class: "muted" }, ` (audit record ${l.auditSeq})`));
      break;
    }
    case TicketEntryKind.CHAT: {
      // Live chat: the requester's lines (a device's local user, through
      // Get help) apart from the technicians'.
      const req = fromRequester(e);
      cls += req ? " tk-chat tk-chat-requester" : " tk-chat tk-chat-tech";
      head = [req ? who : h("span", null, who, " ", h("span", { class: "tk-chat-tag" }, "technician")), " chatted"];
      break;
    }
    case TicketEntryKind.MERGE:
      cls += " tk-change";
      head = e.to ? [who, " merged this duplicate into ", codeLink(e.to)] : [who, " merged ", codeLink(e.from), " into this ticket"];
      break;
    default:
      head = [who, " changed the ticket"];
  }
  return h("li", { class: cls, data: { testid: "tk-entry", kind: kindName, from: fromRequester(e) ? "requester" : "technician" } },
    h("div", { class: "tk-entry-head" }, ...head, " ", when), body);
}

function ticketPage(session: Session, raw: string): Page {
  const life = new AbortController();
  const root = h("div", { class: "page page-ticket", data: { testid: "tk-ticket" } }, h("p", { class: "muted" }, "Loading…"));
  const status = h("div", { class: "page-status", "aria-live": "polite", data: { testid: "tk-action-status" } });
  let code = raw;
  let snapshotSlot: HTMLElement | undefined;
  let frame: { head: HTMLElement; desc: HTMLElement; actions: HTMLElement; timeline: HTMLElement; side: HTMLElement } | undefined;
  let actionsKey = "";
  const files = ticketFiles(life.signal);
  let filesLoaded = false;
  const chat = chatPanel(raw, life.signal, () => reloadSoon());
  // The side's facts are redrawn; the chat and the snapshot stay put (a
  // redraw must not take what is being typed, or the focus).
  const sideInfo = h("div");

  const run = async (fn: () => Promise<string | void>) => {
    try {
      const ok = await fn();
      replace(status, ok ? notice("ok", ok) : null);
      await load();
    } catch (e) {
      if (isCanceled(e)) return;
      checkSession(e);
      replace(status, notice("error", explain(e)));
    }
  };

  const actions = (t: Ticket): HTMLElement => {
    const box = h("div", { class: "tk-actions", data: { testid: "tk-actions" } });
    if (t.mergedInto) {
      box.append(h("p", { class: "muted" }, "This ticket was merged into ", codeLink(t.mergedInto), ": work on that one."));
      return box;
    }
    const work = canWork(session, t);
    const active = activeStatus(t.status);
    if (!work) {
      box.append(h("p", { class: "muted", data: { testid: "tk-readonly" } },
        `This ticket is in the tier ${t.tier} queue and you are tier ${myTier(session)}: you may read it and add internal notes.`));
      return box;
    }
    const btn = (label: string, testid: string, fn: () => void, cls = "btn") => h("button", { type: "button", class: cls, data: { testid }, on: { click: fn } }, label);
    const row = (...c: Array<Node | null>) => h("div", { class: "tk-action-row" }, ...c);
    const input = (label: string, testid: string, attrs: Record<string, unknown> = {}, wide = false) => {
      const id = uid(testid);
      const i = h("input", { id, type: "text", autocomplete: "off", data: { testid }, ...attrs });
      return { i, el: h("div", { class: wide ? "filter tk-reason" : "filter" }, h("label", { for: id }, label), i) };
    };

    if (active) {
      const claim = t.assignee !== session.me.name && myTier(session) >= t.tier
        ? btn("Claim", "tk-claim", () => void run(async () => {
          await ticketClient.assignTicket({ code: t.code, claim: true }, { signal: life.signal });
          return "You work on " + t.code + " now.";
        }), "btn btn-primary")
        : null;
      // The picker offers the enabled technicians of the ticket's tier
      // and up (the relay refuses anyone else), by name with their tier.
      const whoID = uid("tk-assign");
      const who = h("select", { id: whoID, disabled: true, data: { testid: "tk-assign-select" } }, h("option", { value: "" }, "Loading technicians…"));
      const assign = btn("Assign", "tk-assign", () => {
        const name = who.value;
        if (!name) return;
        void run(async () => {
          await ticketClient.assignTicket({ code: t.code, technician: name }, { signal: life.signal });
          return `Assigned to ${name}.`;
        });
      });
      assign.disabled = true;
      void assignees(t.tier).then((list) => {
        const others = list.filter((a) => a.name !== t.assignee);
        replace(who, others.length
          ? [h("option", { value: "" }, "Choose a technician"), ...others.map((a) => h("option", { value: a.name }, `${a.name} (${roleLabel(Role[a.role])})`))]
          : h("option", { value: "" }, `No other technician of tier ${t.tier} or up`));
        who.disabled = assign.disabled = others.length === 0;
      }, (e) => {
        if (isCanceled(e)) return;
        checkSession(e);
        replace(who, h("option", { value: "" }, "Technicians unavailable"));
        replace(status, notice("error", "Could not list the technicians: " + explain(e)));
      });
      box.append(row(claim, h("div", { class: "filter tk-wide" }, h("label", { for: whoID }, "Assign to"), who), assign, t.assignee ? btn("Unassign", "tk-unassign", () => void run(async () => {
        await ticketClient.assignTicket({ code: t.code, technician: "" }, { signal: life.signal });
        return "Unassigned.";
      }), "btn btn-quiet") : null));
    }

    // Status: only the moves the relay allows.
    const next = nextStatuses(t.status);
    if (next.length) {
      const id = uid("tk-status");
      const s = h("select", { id, data: { testid: "tk-status-select" } },
        next.map((x) => h("option", { value: String(x) }, active || x !== TicketStatus.OPEN ? statusLabel(x) : "Reopen")));
      const reason = input("Reason (optional)", "tk-status-reason", { maxlength: 500 }, true);
      box.append(row(h("div", { class: "filter" }, h("label", { for: id }, "Status"), s), reason.el,
        btn("Set status", "tk-status-set", () => void run(async () => {
          const to = Number(s.value) as TicketStatus;
          await ticketClient.setTicketStatus({ code: t.code, status: to, reason: reason.i.value.trim() }, { signal: life.signal });
          return `${t.code} is ${statusLabel(to).toLowerCase()}.`;
        }))));
    }

    if (active) {
      // Escalate / de-escalate with a reason (required: the relay refuses none).
      const id = uid("tk-tier");
      const tiers = [1, 2, 3].filter((x) => x !== t.tier);
      const s = h("select", { id, data: { testid: "tk-tier-select" } },
        tiers.map((x) => h("option", { value: String(x) }, x > t.tier ? `Escalate to tier ${x}` : `De-escalate to tier ${x}`)));
      const reason = input("Reason (required)", "tk-tier-reason", { maxlength: 500, required: true, placeholder: "what was tried, why it moves" }, true);
      const go = btn("Move", "tk-escalate", () => {
        if (!reason.i.value.trim()) {
          replace(status, notice("error", "Say why the ticket moves: the reason is required."));
          reason.i.focus();
          return;
        }
        void run(async () => {
          const tier = Number(s.value);
          await ticketClient.escalateTicket({ code: t.code, tier, reason: reason.i.value.trim() }, { signal: life.signal });
          return `${t.code} is in the tier ${tier} queue now.`;
        });
      });
      box.append(row(h("div", { class: "filter tk-wide" }, h("label", { for: id }, "Tier"), s), reason.el, go));

      const into = input("Duplicate of", "tk-merge-into", { maxlength: 12, placeholder: "DS-…" });
      box.append(row(into.el, btn("Merge", "tk-merge", () => {
        const target = into.i.value.trim();
        if (!target || !confirm(`Close ${t.code} as a duplicate of ${target}?`)) return;
        void run(async () => {
          const r = await ticketClient.mergeTicket({ code: t.code, into: target }, { signal: life.signal });
          return `${t.code} was merged into ${r.ticket?.code ?? target}.`;
        });
      })));
    }

    // Priority and category (the SLA follows the priority).
    {
      const id = uid("tk-edit-priority");
      const p = h("select", { id, data: { testid: "tk-edit-priority" } },
        priorities.map((x) => h("option", { value: String(x), selected: x === t.priority }, priorityLabel(x))));
      const cat = input("Category", "tk-edit-category", { maxlength: 64, value: t.category, placeholder: "none" });
      box.append(row(h("div", { class: "filter" }, h("label", { for: id }, "Priority"), p), cat.el,
        btn("Save", "tk-edit-save", () => {
          const priority = Number(p.value) as TicketPriority;
          const category = cat.i.value.trim();
          if (priority === t.priority && category === t.category) return;
          void run(async () => {
            await ticketClient.updateTicket({ code: t.code, priority: priority === t.priority ? TicketPriority.UNSPECIFIED : priority,
              category: category === t.category ? undefined : category }, { signal: life.signal });
            return `${t.code} is ${priorityLabel(priority).toLowerCase()} priority` + (category ? `, category ${category}.` : ", no category.");
          });
        })));
    }

    // Link what was done for the ticket: the caller's latest record of a
    // kind on the ticket's device, or an audit record by number (the
    // caller's own; an admin's, anyone's). Only the kinds the tier can do.
    {
      const kinds = linkKinds(session);
      const kid = uid("tk-link-kind");
      const kind = h("select", { id: kid, data: { testid: "tk-link-kind" } },
        kinds.map(([k, label]) => h("option", { value: k }, label)),
        h("option", { value: "seq" }, "Audit record number…"));
      const dev = t.requester?.deviceId ?? "";
      const devIn = input("Device", "tk-link-device", { maxlength: 128, value: dev, placeholder: "device id" });
      const seq = input("Audit record", "tk-link-seq", { inputmode: "numeric", maxlength: 20, placeholder: "number" });
      const sync = () => {
        const bySeq = kind.value === "seq";
        devIn.el.hidden = bySeq;
        seq.el.hidden = !bySeq;
      };
      kind.addEventListener("change", sync);
      sync();
      box.append(row(h("div", { class: "filter" }, h("label", { for: kid }, "Link my latest"), kind), devIn.el, seq.el,
        btn("Link", "tk-link-add", () => {
          if (kind.value === "seq") {
            const n = seq.i.value.trim();
            if (!/^[1-9][0-9]*$/.test(n)) {
              replace(status, notice("error", "Give the audit record's number (the Audit page shows it)."));
              seq.i.focus();
              return;
            }
            void run(async () => {
              const r = await ticketClient.linkTicket({ code: t.code, auditSeq: BigInt(n) }, { signal: life.signal });
              return `Linked audit record ${n} (${r.link?.action ?? "record"}).`;
            });
            return;
          }
          const d = devIn.i.value.trim();
          if (!d) {
            replace(status, notice("error", "Name the device whose latest record to link."));
            devIn.i.focus();
            return;
          }
          void run(async () => {
            const r = await ticketClient.linkTicket({ code: t.code, kind: kind.value, deviceId: d }, { signal: life.signal });
            return `Linked ${r.link?.kind ?? kind.value} ${r.link?.action ?? ""} (audit record ${r.link?.auditSeq ?? "?"}).`;
          });
        })));
    }
    return box;
  };

  // The reply box is built once and kept across redraws (a live change
  // to the ticket must not take what is being typed, or the focus).
  let current: Ticket | undefined;
  const replyID = uid("tk-reply");
  const replyText = h("textarea", { id: replyID, rows: 4, maxlength: 20000, data: { testid: "tk-reply-text" } });
  const internal = h("input", { type: "checkbox", data: { testid: "tk-reply-internal" } });
  const send = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "tk-reply-send" } }, "Send reply");
  const replyForm = h("form", { class: "tk-reply-form" },
    h("label", { for: replyID }, "Reply to the requester, or an internal note for technicians"), replyText,
    h("div", { class: "form-actions tk-reply-actions" },
      h("label", { class: "check" }, internal, " Internal note"), send));
  const drawReply = () => {
    setText(send, internal.checked ? "Add note" : "Send reply");
    replyForm.classList.toggle("tk-reply-note", internal.checked);
  };
  internal.addEventListener("change", drawReply);
  const updateReply = (t: Ticket) => {
    // Replies need the ticket workable and active; notes are open to all.
    const canReply = canWork(session, t) && activeStatus(t.status) && !t.mergedInto;
    if (!canReply) internal.checked = true;
    internal.disabled = !canReply;
    internal.title = canReply ? "" : "Only an internal note: you cannot reply to this ticket (its tier, or its status)";
    drawReply();
  };
  replyForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!replyText.value.trim() || !current) return;
    send.disabled = true;
    const note = internal.checked;
    const code_ = current.code;
    void run(async () => {
      await ticketClient.replyTicket({ code: code_, text: replyText.value, internal: note }, { signal: life.signal });
      replyText.value = "";
      return note ? "Note added." : "Reply sent.";
    }).finally(() => { send.disabled = false; });
  });

  const drawSnapshot = (slot: HTMLElement, r: CompareTicketSnapshotResponse) => {
    // A package upgrade changes dozens of software rows: the first few
    // show, the rest fold away.
    const shown = 8;
    const changeTable = (cs: CompareTicketSnapshotResponse["changes"], testid?: string) =>
      h("table", { class: "grid compact", data: testid ? { testid } : undefined },
        h("thead", null, h("tr", null, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "At filing → now"))),
        h("tbody", null, cs.map((c) => h("tr", null, h("td", null, field(c.field)),
          h("td", null, h("span", { class: "change" }, h("span", { class: "from wrap" }, c.from || "(none)"),
            h("span", { class: "arrow", "aria-label": "changed to" }, " → "), h("span", { class: "to wrap" }, c.to || "(removed)")))))));
    const changes = r.changes.length
      ? [changeTable(r.changes.slice(0, shown), "tk-snap-changes"),
        r.changes.length > shown
          ? h("details", { data: { testid: "tk-snap-more" } }, h("summary", null, `${r.changes.length - shown} more changes`), changeTable(r.changes.slice(shown)))
          : null]
      : h("p", { class: "muted", data: { testid: "tk-snap-same" } }, "The inventory is as it was when the ticket was filed.");
    const health = r.health.length
      ? h("table", { class: "grid compact" },
        h("thead", null, h("tr", null, h("th", { scope: "col" }, "Health"), h("th", { scope: "col" }, "At filing"), h("th", { scope: "col" }, "Now"))),
        h("tbody", null, r.health.map((x) => h("tr", null, h("td", null, x.name), h("td", null, x.then || "–"), h("td", null, x.now || "–")))))
      : null;
    replace(slot, card("What changed since filing",
      h("p", { class: "muted" }, `Snapshot taken ${fmtTime(tsDate(r.takenAt))}; current inventory from ${fmtTime(tsDate(r.currentAt))}. `,
        h("a", { href: "#/devices/" + encodeURIComponent(r.deviceId), data: { testid: "tk-device-link" } }, "Open the device")),
      health, changes));
  };

  const draw = (t: Ticket, timeline: TicketEntry[]) => {
    code = t.code;
    current = t;
    updateReply(t);
    const copy = h("button", { type: "button", class: "btn btn-small btn-quiet", data: { testid: "tk-copy" }, title: "Copy the code" }, "Copy");
    copy.addEventListener("click", () => {
      void navigator.clipboard?.writeText(t.code).then(() => setText(copy, "Copied"), () => setText(copy, "Select and copy"));
    });
    const now = Date.now();
    const dev = t.requester?.deviceId ?? "";
    if (!snapshotSlot && t.hasSnapshot) {
      snapshotSlot = h("div", { data: { testid: "tk-snapshot" } }, h("p", { class: "muted" }, "Comparing the device with the snapshot…"));
      const slot = snapshotSlot;
      void ticketClient.compareTicketSnapshot({ code: t.code }, { signal: life.signal }).then((r) => drawSnapshot(slot, r), (e) => {
        if (isCanceled(e)) return;
        checkSession(e);
        replace(slot, notice("error", "Could not compare the device with its snapshot: " + explain(e)));
      });
    }
    // The page's frame is built once; a redraw fills its slots, and the
    // actions only when what they depend on changed (typed reasons stay).
    if (!frame) {
      frame = { head: h("div", { class: "page-head" }), desc: h("div"), actions: h("div"), timeline: h("ol", { class: "tk-timeline", data: { testid: "tk-timeline" } }), side: h("div") };
      replace(root,
        h("p", { class: "crumbs" }, h("a", { href: "#/tickets" }, "← Tickets")),
        frame.head, status,
        h("div", { class: "tk-grid" },
          h("div", { class: "tk-main" }, frame.desc, frame.actions, files.el, h("h2", null, "Timeline"), frame.timeline, replyForm),
          h("aside", { class: "tk-side" }, sideInfo, chat.el, frame.side)));
    }
    replace(frame.head, h("div", null,
      h("div", { class: "title-row" }, h("span", { class: "tk-code tk-code-big", data: { testid: "tk-code" } }, t.code), copy, statusBadge(t), priorityBadge(t)),
      h("h1", { class: "tk-subject", data: { testid: "tk-subject" } }, t.subject)));
    replace(frame.desc, t.description ? h("p", { class: "tk-description" }, t.description) : null);
    const key = [t.status, t.tier, t.assignee, t.mergedInto, t.priority, t.category].join("|");
    if (key !== actionsKey) {
      actionsKey = key;
      replace(frame.actions, actions(t));
    }
    replace(frame.timeline, timeline.map(entryView));
    chat.update(t, timeline, canWork(session, t));
    if (!filesLoaded) {
      filesLoaded = true;
      files.load(t.code);
    }
    replace(frame.side, snapshotSlot ?? null);
    replace(sideInfo,
      kvList([
        ["Tier", h("span", { data: { testid: "tk-ticket-tier" } }, String(t.tier))],
        ["Assignee", h("span", { data: { testid: "tk-ticket-assignee" } }, t.assignee || "nobody")],
        ["First response", slaEl(slaTarget(t.sla, "first", now), "tk-sla-first")],
        ["Resolution", slaEl(slaTarget(t.sla, "resolution", now), "tk-sla-resolution")],
        ["Requester", [t.requester?.name ?? "", t.requester?.email ? ` <${t.requester.email}>` : ""].join("")],
        ["Device", dev ? [h("a", { href: "#/devices/" + encodeURIComponent(dev), title: dev, data: { testid: "tk-ticket-device" } }, t.requester?.deviceHostname || dev), " · ",
          // The viewer keeps this ticket's chat beside the screen.
          h("a", { href: `#/devices/${encodeURIComponent(dev)}/session?ticket=${encodeURIComponent(t.code)}`, data: { testid: "tk-remote-session" } }, "Remote session")] : ""],
        ["Category", t.category],
        ["Filed", `${fmtTime(tsDate(t.createdAt))} by ${t.createdBy}`],
        ["Updated", fmtTime(tsDate(t.updatedAt))],
        ["Merged into", t.mergedInto ? codeLink(t.mergedInto) : ""],
      ]),
      t.requester?.email ? mailOffNotice(session.me.role === Role.ADMIN) : null);
  };

  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    try {
      const r = await ticketClient.getTicket({ code }, { signal: life.signal });
      if (mine === seq && r.ticket) draw(r.ticket, r.timeline);
    } catch (e) {
      if (isCanceled(e) || mine !== seq) return;
      checkSession(e);
      frame = undefined;
      actionsKey = "";
      replace(root, h("p", { class: "crumbs" }, h("a", { href: "#/tickets" }, "← Tickets")), notice("error", explain(e)));
    }
  };
  const reloadSoon = debounce(() => void load(), 150);
  // The SLA's time left counts down without a reload.
  const ticker = setInterval(() => {
    if (!current) return;
    const now = Date.now();
    for (const [testid, which] of [["tk-sla-first", "first"], ["tk-sla-resolution", "resolution"]] as const) {
      const el = root.querySelector<HTMLElement>(`[data-testid=${testid}]`);
      if (el) drawSla(el, slaTarget(current.sla, which, now));
    }
  }, 30_000);
  watchTickets(life.signal, {
    onTicket: (ev) => {
      if (ev.ticket?.code === code) reloadSoon();
    },
    onState: () => {},
    onResync: () => reloadSoon(),
  });
  void load();
  return { title: raw.toUpperCase(), el: root, dispose: () => { clearInterval(ticker); reloadSoon.cancel(); life.abort(); chat.dispose(); files.dispose(); } };
}

// --- new ticket ------------------------------------------------------------

function newTicketPage(query: string): Page {
  const life = new AbortController();
  const deviceParam = new URLSearchParams(query).get("device") ?? "";
  const field_ = (label: string, testid: string, attrs: Record<string, unknown> = {}) => {
    const id = uid(testid);
    const input = h("input", { id, type: "text", autocomplete: "off", data: { testid }, ...attrs });
    return { input, el: h("div", { class: "form-row" }, h("label", { for: id }, label), input) };
  };
  const subject = field_("Subject", "tk-new-subject", { maxlength: 200, required: true });
  const descID = uid("tk-desc");
  const description = h("textarea", { id: descID, rows: 6, maxlength: 20000, data: { testid: "tk-new-description" } });
  const category = field_("Category", "tk-new-category", { maxlength: 64, placeholder: "hardware, software, network…" });
  const prioID = uid("tk-prio");
  const priority = h("select", { id: prioID, data: { testid: "tk-new-priority" } },
    priorities.map((p) => h("option", { value: String(p), selected: p === TicketPriority.NORMAL }, priorityLabel(p))));
  const name = field_("Requester name", "tk-new-name", { maxlength: 200 });
  const email = field_("Requester email", "tk-new-email", { maxlength: 254, type: "email" });
  const devID = uid("tk-dev");
  const listID = uid("tk-devs");
  const device = h("input", { id: devID, type: "text", autocomplete: "off", list: listID, value: deviceParam, placeholder: "hostname or device id", data: { testid: "tk-new-device" } });
  const devices = h("datalist", { id: listID });
  const devHint = h("p", { class: "muted tk-dev-hint", data: { testid: "tk-new-device-name" } });
  const status = h("div", { class: "page-status", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "tk-new-submit" } }, "File ticket");
  // Device picker: hostnames offered as the technician types; what is
  // filed is the device id.
  const byName = new Map<string, string>();
  const lookup = debounce(async () => {
    const q = device.value.trim();
    try {
      const r = await client.listDevices({ query: q, pageSize: 20 }, { signal: life.signal });
      byName.clear();
      replace(devices, r.devices.map((d) => {
        byName.set(d.hostname.toLowerCase(), d.id);
        return h("option", { value: d.hostname }, d.id);
      }));
      const hit = r.devices.find((d) => d.id === q || d.hostname.toLowerCase() === q.toLowerCase());
      setText(devHint, hit ? `${hit.hostname} (${hit.id})` : q ? "No device matches: the ticket is filed without one unless you pick one." : "");
    } catch (e) {
      if (isCanceled(e)) return;
      checkSession(e);
    }
  }, 200);
  device.addEventListener("input", () => void lookup());
  if (deviceParam) void lookup();

  const form = h("form", { class: "tk-new-form", data: { testid: "tk-new-form" } },
    subject.el,
    h("div", { class: "form-row" }, h("label", { for: descID }, "Description"), description),
    h("div", { class: "tk-new-meta" }, category.el, h("div", { class: "form-row" }, h("label", { for: prioID }, "Priority"), priority)),
    h("div", { class: "tk-new-meta" }, name.el, email.el),
    h("div", { class: "form-row" }, h("label", { for: devID }, "Device"), device, devices, devHint),
    h("div", { class: "form-actions" }, h("a", { href: "#/tickets", class: "btn btn-quiet" }, "Cancel"), submit));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submit.disabled = true;
    const d = device.value.trim();
    void (async () => {
      try {
        const r = await ticketClient.createTicket({
          subject: subject.input.value, description: description.value, category: category.input.value.trim(),
          priority: Number(priority.value) as TicketPriority,
          requester: { name: name.input.value.trim(), email: email.input.value.trim(), deviceId: byName.get(d.toLowerCase()) ?? d },
        }, { signal: life.signal });
        location.hash = "#/tickets/" + r.ticket!.code;
      } catch (err) {
        if (isCanceled(err)) return;
        checkSession(err);
        replace(status, notice("error", explain(err)));
      } finally {
        submit.disabled = false;
      }
    })();
  });
  return {
    title: "New ticket",
    el: h("div", { class: "page page-ticket-new", data: { testid: "tk-new-page" } },
      h("p", { class: "crumbs" }, h("a", { href: "#/tickets" }, "← Tickets")),
      h("div", { class: "page-head" }, h("h1", null, "New ticket")),
      h("p", { class: "muted" }, "The requester gets a code like DS-7K3Q to quote. With a device, its inventory and health are kept with the ticket as they are now."),
      status, form),
    dispose: () => {
      lookup.cancel();
      life.abort();
    },
  };
}
