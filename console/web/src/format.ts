// Formatting shared by the pages: sizes, rates, relative times, roles. These
// follow the deskside CLI (console/cli/format.go) so both consoles say the
// same thing the same way. Pure functions, no DOM: test/format.test.ts
// runs them under node.

import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

/** tsDate converts a protobuf Timestamp, or returns undefined for none (or the zero time). */
export function tsDate(ts: Timestamp | undefined): Date | undefined {
  if (!ts || (ts.seconds === 0n && ts.nanos === 0)) return undefined;
  return timestampDate(ts);
}

const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/** toNum turns a uint64 (bigint) or number into a number for display. */
export function toNum(n: bigint | number): number {
  return typeof n === "bigint" ? Number(n) : n;
}

/** formatBytes renders a byte count as technicians read it: "16 GiB", "7.8 GiB", "512 MiB". */
export function formatBytes(n: bigint | number): string {
  let f = Math.max(0, toNum(n));
  let i = 0;
  while (f >= 1024 && i < units.length - 1) {
    f /= 1024;
    i++;
  }
  if (i === 0 || f >= 100 || f === Math.trunc(f)) return `${Math.round(f)} ${units[i]}`;
  return `${f.toFixed(1).replace(/\.0$/, "")} ${units[i]}`;
}

/** sizeOrDash is formatBytes, or "–" for an unknown (zero) size. */
export function sizeOrDash(n: bigint | number): string {
  return toNum(n) === 0 ? "–" : formatBytes(n);
}

/** formatRate renders bytes per second. */
export function formatRate(bps: number): string {
  return formatBytes(Math.max(0, bps)) + "/s";
}

/** roughDuration renders ms in its largest whole unit: "45s", "3m", "5h", "2d". */
export function roughDuration(ms: number): string {
  const sec = 1000, min = 60 * sec, hour = 60 * min;
  if (ms < min) return `${Math.floor(ms / sec)}s`;
  if (ms < hour) return `${Math.floor(ms / min)}m`;
  if (ms < 48 * hour) return `${Math.floor(ms / hour)}h`;
  return `${Math.floor(ms / (24 * hour))}d`;
}

/** ago renders how long before now t was: "just now", "45s ago", "3m ago"; "never" without a time. */
export function ago(now: number, t: Date | undefined): string {
  if (!t || t.getTime() <= 0) return "never";
  const d = now - t.getTime();
  if (d < -60_000) return `in ${roughDuration(-d)} (clock skew?)`;
  if (d < 10_000) return "just now";
  return roughDuration(d) + " ago";
}

/** until renders how long after now t is: "in 11h", or "expired". */
export function until(now: number, t: Date | undefined): string {
  if (!t) return "–";
  const d = t.getTime() - now;
  return d <= 0 ? "expired" : "in " + roughDuration(d);
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** fmtTime renders a time in local time: "2026-11-23 10:04:05". */
export function fmtTime(t: Date | undefined): string {
  if (!t || t.getTime() <= 0) return "–";
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
}

/** fileStamp is "YYYYMMDD-HHMM" in local time, for download names. */
export function fileStamp(t: Date): string {
  return `${t.getFullYear()}${pad(t.getMonth() + 1)}${pad(t.getDate())}-${pad(t.getHours())}${pad(t.getMinutes())}`;
}

/** pct is part/whole in percent, or undefined when whole is zero. */
export function pct(part: bigint | number, whole: bigint | number): number | undefined {
  const w = toNum(whole);
  if (w <= 0) return undefined;
  return (toNum(part) * 100) / w;
}

/**
 * dfUsePct is the Use% df(1) prints: used / (used + available), rounded up,
 * so blocks reserved for root count in neither. Free space is the agent's
 * available figure (statfs f_bavail), never total − used. Undefined when
 * both are zero. console/cli's dfPercent computes the same.
 */
export function dfUsePct(used: bigint, avail: bigint): number | undefined {
  const whole = used + avail;
  if (whole <= 0n) return undefined;
  const n = used * 100n;
  return Number(n / whole + (n % whole === 0n ? 0n : 1n));
}

/**
 * dfFreePct is the free share that goes with df's Use%: 100 − dfUsePct, so
 * the fleet's "free %" and the device page's "% used" add up to 100.
 */
export function dfFreePct(used: bigint, avail: bigint): number | undefined {
  const use = dfUsePct(used, avail);
  return use === undefined ? undefined : 100 - use;
}

/** ceilPct rounds a percentage the agent computed up, as df does. */
export function ceilPct(p: number): number | undefined {
  if (!Number.isFinite(p) || p < 0) return undefined;
  return Math.ceil(Math.min(p, 100));
}

/** fmtPct renders a percentage with no decimals ("24 %"), or "–". */
export function fmtPct(p: number | undefined, digits = 0): string {
  if (p === undefined || !Number.isFinite(p)) return "–";
  return `${p.toFixed(digits)} %`;
}

/** fmtCount renders an integer with thousands separators. */
export function fmtCount(n: bigint | number): string {
  return toNum(n).toLocaleString("en-US");
}

/** roleLabel renders a Role enum name ("ROLE_TIER2") as "Tier 2". */
export function roleLabel(enumName: string | undefined): string {
  const r = (enumName ?? "").replace(/^ROLE_/, "").toLowerCase();
  if (r.startsWith("tier")) return `Tier ${r.slice(4)}`;
  if (r === "admin") return "Admin";
  return r ? r : "no role";
}

/** plural: plural(3, "device") = "3 devices". */
export function plural(n: number | bigint, word: string, many = word + "s"): string {
  return `${fmtCount(n)} ${toNum(n) === 1 ? word : many}`;
}
