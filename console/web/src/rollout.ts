// Words of the Releases page (pages/releases.ts) about a rollout: pure
// functions of the relay's RolloutProgress, unit-tested.

import { fmtCount, plural } from "./format";
import type { RolloutProgress, StartRolloutRequest } from "./gen/deskside/v1/release_pb";

/** Counts is the part of RolloutProgress the words need. */
export type Counts = Pick<RolloutProgress, "inScope" | "current" | "offered" | "waiting" | "downloading" | "installed" | "refused" | "failed" | "rolledBack"> & {
  selected: ReadonlyArray<{ devices: number }>;
};

/** platformName is "linux/amd64", or what a device that never connected has. */
export function platformName(os: string, arch: string): string {
  return os || arch ? `${os}/${arch}` : "not connected yet";
}

/** targetText says which devices a rollout selects. */
export function targetText(r: Pick<StartRolloutRequest, "percent" | "group">): string {
  if (r.group) return `the devices of group ${r.group}`;
  if (r.percent >= 100) return "all devices";
  return `${r.percent} % of the devices`;
}

/** done is the devices of the rollout's platform that run its version. */
export function done(p: Counts): number {
  return p.installed + p.current;
}

/** progressText is the progress bar's words: "3 of 12 devices run v1.4.0 (25 %)". */
export function progressText(p: Counts, version: string): string {
  if (p.inScope === 0) return `No device of this platform is selected yet.`;
  const pc = Math.floor((100 * done(p)) / p.inScope);
  return `${fmtCount(done(p))} of ${plural(p.inScope, "device")} run ${version} (${pc} %)`;
}

/** offerText is the confirmation's count of what a rollout would do. */
export function offerText(p: Counts, version: string, os: string, arch: string): string {
  const sel = p.selected.reduce((n, c) => n + c.devices, 0);
  const parts = [`It selects ${plural(sel, "device")}.`];
  const toOffer = p.offered + p.waiting;
  parts.push(`${fmtCount(toOffer)} of them ${toOffer === 1 ? "runs" : "run"} ${os}/${arch} with an older version and will be offered ${version}: ` +
    `${fmtCount(p.offered)} connected now, ${fmtCount(p.waiting)} when ${p.waiting === 1 ? "it connects" : "they connect"}.`);
  if (p.current + p.installed > 0) parts.push(`${fmtCount(p.current + p.installed)} already ${p.current + p.installed === 1 ? "runs" : "run"} it or newer.`);
  const tried = p.refused + p.failed + p.rolledBack;
  if (tried > 0) parts.push(`${fmtCount(tried)} refused, failed or rolled it back and ${tried === 1 ? "is" : "are"} not offered it again.`);
  if (p.downloading > 0) parts.push(`${fmtCount(p.downloading)} ${p.downloading === 1 ? "is" : "are"} downloading it.`);
  return parts.join(" ");
}

