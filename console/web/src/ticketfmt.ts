// Ticket wording shared by the ticket pages: codes as people type them,
// status and priority names, SLA time left. Pure functions, no DOM:
// test/ticketfmt.test.ts runs them under node. Codes follow relay/tickets
// (code.go): "DS-" and four or five characters without 0, O, 1 and I.

import { TicketPriority, TicketStatus, type TicketSla } from "./gen/deskside/v1/tickets_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";

/** codeAlphabet is what ticket codes are made of (relay/tickets.Alphabet). */
export const codeAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

const codeChars = `[${codeAlphabet}]`;

/**
 * normalizeCode turns what someone typed or read out into a code's stored
 * form, as the relay does: any case, with or without "DS", dashes or
 * spaces ("ds 7k3q", "7K3Q" and "DS-7k3q" are "DS-7K3Q"). Undefined when s
 * cannot be a code.
 */
export function normalizeCode(s: string): string | undefined {
  let u = s.trim().toUpperCase();
  let prefixed = false;
  for (const p of ["DS-", "DS ", "DS_"]) {
    if (u.startsWith(p)) {
      u = u.slice(p.length);
      prefixed = true;
      break;
    }
  }
  let c = u.replace(/[-_ ]/g, "");
  if (!prefixed && c.length >= 6 && c.startsWith("DS")) c = c.slice(2);
  if (c.length < 4 || c.length > 5) return undefined;
  for (const ch of c) if (!codeAlphabet.includes(ch)) return undefined;
  return "DS-" + c;
}

/**
 * findCode finds a ticket code in what was typed into a search box: a
 * "DS-7K3Q" anywhere in it (any case, "DS 7K3Q" too), or the whole input
 * when it has the "DS" prefix. A bare "7K3Q" is not taken for a code here
 * (it could be a word: "HELP" is made of code characters); the relay's
 * list still finds the ticket by it.
 */
export function findCode(input: string): string | undefined {
  const re = new RegExp(`(?:^|[^A-Z0-9])(DS[-_ ]?${codeChars}{4,5})(?![A-Z0-9])`, "i");
  const m = re.exec(input.toUpperCase());
  return m ? normalizeCode(m[1]!) : undefined;
}

/** statusLabel names a ticket status as the console shows it. */
export function statusLabel(s: TicketStatus): string {
  switch (s) {
    case TicketStatus.NEW: return "New";
    case TicketStatus.OPEN: return "Open";
    case TicketStatus.PENDING_USER: return "Pending user";
    case TicketStatus.RESOLVED: return "Resolved";
    case TicketStatus.CLOSED: return "Closed";
  }
  return "–";
}

/** priorityLabel names a ticket priority. */
export function priorityLabel(p: TicketPriority): string {
  switch (p) {
    case TicketPriority.LOW: return "Low";
    case TicketPriority.NORMAL: return "Normal";
    case TicketPriority.HIGH: return "High";
    case TicketPriority.URGENT: return "Urgent";
  }
  return "–";
}

/**
 * entryValue renders a status or priority as a timeline entry holds it
 * (the relay's lower-case name, "pending user") the way the console
 * names it ("Pending user").
 */
export function entryValue(v: string): string {
  return v ? v[0]!.toUpperCase() + v.slice(1) : "–";
}

/** active reports a status still being worked (new, open, pending user). */
export function activeStatus(s: TicketStatus): boolean {
  return s === TicketStatus.NEW || s === TicketStatus.OPEN || s === TicketStatus.PENDING_USER;
}

/**
 * nextStatuses are the statuses a ticket may move to from s, as the relay
 * allows (relay/tickets.allowed): active ones move forward (or back to
 * open / pending user), resolved closes or reopens, closed reopens.
 */
export function nextStatuses(s: TicketStatus): TicketStatus[] {
  const all = [TicketStatus.OPEN, TicketStatus.PENDING_USER, TicketStatus.RESOLVED, TicketStatus.CLOSED];
  if (activeStatus(s)) return all.filter((x) => x !== s);
  if (s === TicketStatus.RESOLVED) return [TicketStatus.OPEN, TicketStatus.CLOSED];
  if (s === TicketStatus.CLOSED) return [TicketStatus.OPEN];
  return [];
}

/**
 * fmtLeft renders a time left: "45m", "2h 15m", "3d 4h"; a negative one
 * as overdue ("overdue 2h 15m"). Under a minute is "<1m".
 */
export function fmtLeft(ms: number): string {
  const neg = ms < 0;
  const m = Math.floor(Math.abs(ms) / 60_000);
  let s: string;
  if (m < 1) s = "<1m";
  else if (m < 60) s = `${m}m`;
  else if (m < 24 * 60) s = `${Math.floor(m / 60)}h` + (m % 60 ? ` ${m % 60}m` : "");
  else s = `${Math.floor(m / 1440)}d` + (Math.floor((m % 1440) / 60) ? ` ${Math.floor((m % 1440) / 60)}h` : "");
  return neg ? "overdue " + s : s;
}

/** SlaView is one SLA target as shown: text, and whether it was missed. */
export interface SlaView {
  text: string;
  breached: boolean;
  /** pending: the target is still running (not met yet). */
  pending: boolean;
}

const dueMs = (ts: TicketSla["firstResponseDue"]) => (ts && (ts.seconds !== 0n || ts.nanos !== 0) ? timestampDate(ts).getTime() : undefined);

/**
 * slaTarget is one target's state at now: time left (counted from its due
 * time, so the page can keep it current), "met" or "met late" once met,
 * or "–" when the relay sent none.
 */
export function slaTarget(sla: TicketSla | undefined, which: "first" | "resolution", now: number): SlaView {
  if (!sla) return { text: "–", breached: false, pending: false };
  const left = which === "first" ? sla.firstResponseLeft : sla.resolutionLeft;
  const due = dueMs(which === "first" ? sla.firstResponseDue : sla.resolutionDue);
  const breached = which === "first" ? sla.firstResponseBreached : sla.resolutionBreached;
  if (left === undefined || due === undefined) {
    if (due === undefined) return { text: "–", breached: false, pending: false };
    return { text: breached ? "met late" : "met", breached, pending: false };
  }
  const ms = due - now;
  return { text: fmtLeft(ms), breached: breached || ms < 0, pending: true };
}

/**
 * slaNext is what a queue shows in its SLA column: the first response
 * while it is due, then the resolution ("reply in 45m", "resolve in 7h",
 * "reply overdue 2h"); "met" when both are.
 */
export function slaNext(sla: TicketSla | undefined, now: number): SlaView {
  const first = slaTarget(sla, "first", now);
  const say = (what: string, v: SlaView) => ({ ...v, text: v.text.startsWith("overdue") ? `${what} ${v.text}` : `${what} in ${v.text}` });
  if (first.pending) return say("reply", first);
  const res = slaTarget(sla, "resolution", now);
  if (res.pending) return say("resolve", res);
  return { text: res.text, breached: res.breached || first.breached, pending: false };
}

// --- Get help: requesters and the files they send ---------------------------

/** fromRequester says whether a timeline entry is a Get help requester's
 * (relay/tickets RequesterAuthor: "requester <alice>"). */
export function fromRequester(e: { author: string }): boolean {
  return e.author.startsWith("requester <");
}

/** requesterLogin is the local user's login in a requester author ("requester <alice>" → "alice"). */
export function requesterLogin(author: string): string {
  const m = /^requester <(.*)>$/.exec(author);
  return m ? m[1]! : author;
}

const pngSignature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** isPNG says whether an attachment is a PNG: by its type and by its first bytes. */
export function isPNG(a: { contentType: string; data: Uint8Array }): boolean {
  return a.contentType === "image/png" && a.data.length >= 8 && pngSignature.every((b, i) => a.data[i] === b);
}

/** isCheckReport says whether an attachment is a triage report (relay/helprequests). */
export function isCheckReport(a: { contentType: string }): boolean {
  return /^application\/x-protobuf;\s*messageType=deskside\.v1\.CheckReport$/.test(a.contentType);
}

/** fmtBytes is a size for people: "812 B", "14.2 KiB", "1.9 MiB". */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
