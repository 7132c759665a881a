// Diagnostics reports for display: status names and labels, problems
// first, counts. Pure functions, no DOM (test/checks.test.ts).

import { CheckStatus, type CheckResult } from "./gen/deskside/v1/diag_pb";

/** StatusKey is a check status as the page's data-status says it. */
export type StatusKey = "pass" | "warn" | "fail" | "unavailable";

/** statusKey maps a CheckStatus (unknown values count as unavailable). */
export function statusKey(s: CheckStatus): StatusKey {
  switch (s) {
    case CheckStatus.PASS:
      return "pass";
    case CheckStatus.WARN:
      return "warn";
    case CheckStatus.FAIL:
      return "fail";
    default:
      return "unavailable";
  }
}

/** statusLabel is the badge text: never colour alone. */
export const statusLabel: Record<StatusKey, string> = { pass: "PASS", warn: "WARN", fail: "FAIL", unavailable: "N/A" };

/** statusWords says the status in a sentence ("Overall: failing"). */
export const statusWords: Record<StatusKey, string> = { pass: "all passing", warn: "warnings", fail: "failing", unavailable: "not available" };

/** statusIcon is a glyph shown next to the label (decoration only). */
export const statusIcon: Record<StatusKey, string> = { pass: "✓", warn: "!", fail: "✕", unavailable: "–" };

const rank: Record<StatusKey, number> = { fail: 0, warn: 1, unavailable: 2, pass: 3 };

/** sortResults orders results problems first (fail, warn, n/a, pass), then by name. */
export function sortResults<T extends Pick<CheckResult, "name" | "status">>(rs: readonly T[]): T[] {
  return [...rs].sort((a, b) => rank[statusKey(a.status)] - rank[statusKey(b.status)] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** countLine counts results by status: "2 fail · 1 warn · 14 pass · 1 n/a" (zero counts left out). */
export function countLine(rs: ReadonlyArray<Pick<CheckResult, "status">>): string {
  const n: Record<StatusKey, number> = { fail: 0, warn: 0, unavailable: 0, pass: 0 };
  for (const r of rs) n[statusKey(r.status)]++;
  const parts: string[] = [];
  if (n.fail) parts.push(`${n.fail} fail`);
  if (n.warn) parts.push(`${n.warn} warn`);
  if (n.pass) parts.push(`${n.pass} pass`);
  if (n.unavailable) parts.push(`${n.unavailable} n/a`);
  return parts.join(" · ");
}

/** budgetChoices are the triage budget options, in seconds (the relay's default is 5 s, its limit 60 s). */
export const budgetChoices: readonly number[] = [5, 10, 20, 30, 60];
