// Pure helpers of the Settings page (pages/settings.ts): SLA durations
// as technicians write them, and mail templates split into subject and
// body with a preview filled from sample values.

// --- durations ------------------------------------------------------------

/** fmtDuration writes whole minutes as "1d 4h 30m". */
export function fmtDuration(seconds: number): string {
  let m = Math.round(seconds / 60);
  const d = Math.floor(m / 1440);
  m -= d * 1440;
  const hr = Math.floor(m / 60);
  m -= hr * 60;
  const parts = [d ? `${d}d` : "", hr ? `${hr}h` : "", m ? `${m}m` : ""].filter((p) => p !== "");
  return parts.length ? parts.join(" ") : "0m";
}

/** parseDuration reads "4h", "30m", "1d 4h", "1h30m" (days, hours, minutes) into seconds; undefined if it is none of those. */
export function parseDuration(s: string): number | undefined {
  const t = s.trim().toLowerCase().replace(/\s+/g, "");
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$/.exec(t);
  if (!t || !m) return undefined;
  return (Number(m[1] ?? 0) * 1440 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 60;
}

// --- templates ------------------------------------------------------------

/** The fields a template may use, with the sample the preview (and the relay's check) fills in. */
export const placeholders: ReadonlyArray<[string, string, string]> = [
  ["Code", "the ticket's code", "DS-7K3Q"],
  ["Subject", "the ticket's subject", "Printer offline"],
  ["RequesterName", "the requester's name", "Sam"],
  ["RequesterEmail", "the requester's email", "sam@example.com"],
  ["Status", "the ticket's status", "open"],
  ["Tier", "the ticket's tier (1–3)", "2"],
  ["Assignee", "who the ticket is assigned to", "alice"],
  ["Actor", "who made the change", "alice"],
  ["Text", "the public reply or escalation reason", "Try again now."],
];

/** splitTemplate cuts a template's text into its "Subject:" line and body. */
export function splitTemplate(text: string): { subject: string; body: string } {
  const nl = text.indexOf("\n");
  const first = nl < 0 ? text : text.slice(0, nl);
  if (!/^Subject:/.test(first)) return { subject: "", body: text };
  return { subject: first.slice("Subject:".length).trim(), body: (nl < 0 ? "" : text.slice(nl + 1)).replace(/^[\r\n]+/, "") };
}

/** joinTemplate is the text the relay stores: the subject line, a blank line, the body. */
export function joinTemplate(subject: string, body: string): string {
  return `Subject: ${subject.replace(/[\r\n]+/g, " ").trim()}\n\n${body}`;
}

/** fillSample replaces {{.Field}} with the sample values; other template actions stay as written. */
export function fillSample(text: string): string {
  const sample = new Map(placeholders.map(([k, , v]) => [k, v]));
  return text.replace(/\{\{-?\s*\.([A-Za-z]+)\s*-?\}\}/g, (all, k: string) => sample.get(k) ?? all);
}
