// Export columns and file formats. Pure, no DOM: test/export.test.ts runs it
// under node. Column names follow `deskside inventory export` so files
// from the CLI and from the web console line up.

import { csvLine } from "./csv";
import { fileStamp, pct, tsDate } from "./format";
import type { Device } from "./gen/deskside/v1/console_pb";
import type { Inventory } from "./gen/deskside/v1/inventory_pb";

export type Value = string | number | boolean | null;

export interface ExportColumn {
  /** Column name in the file (CSV header, JSON key). */
  key: string;
  /** The checkbox that selects it. */
  choice: string;
  /** Whether the value needs the device's inventory (ExportInventory). */
  inventory: boolean;
  get(d: Device, inv: Inventory | undefined): Value;
}

export interface ExportChoice {
  id: string;
  label: string;
  /** Fleet table columns are checked by default. */
  fleet: boolean;
  inventory: boolean;
}

/** The checkboxes of the export dialog, in display order. */
export const exportChoices: ExportChoice[] = [
  { id: "online", label: "Online", fleet: true, inventory: false },
  { id: "hostname", label: "Hostname", fleet: true, inventory: false },
  { id: "user", label: "User", fleet: true, inventory: false },
  { id: "os", label: "OS", fleet: true, inventory: false },
  { id: "model", label: "Model", fleet: true, inventory: false },
  { id: "cpu", label: "CPU", fleet: true, inventory: false },
  { id: "ram", label: "RAM", fleet: true, inventory: false },
  { id: "disk", label: "Disk (size, used, available and free % as df shows them)", fleet: true, inventory: false },
  { id: "last_seen", label: "Last seen", fleet: true, inventory: false },
  { id: "id", label: "Device ID", fleet: false, inventory: false },
  { id: "agent_version", label: "Agent version", fleet: false, inventory: false },
  { id: "serial", label: "Serial number", fleet: false, inventory: true },
  { id: "os_version", label: "OS version", fleet: false, inventory: true },
  { id: "kernel", label: "Kernel", fleet: false, inventory: true },
  { id: "ip_addresses", label: "IP addresses", fleet: false, inventory: true },
  { id: "mac_addresses", label: "MAC addresses", fleet: false, inventory: true },
  { id: "software_count", label: "Software count", fleet: false, inventory: true },
];

const or = (a: string | undefined, b: string | undefined) => (a ? a : b ?? "");
const bytes = (n: bigint): number | string => (n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString());

/** The columns in file order (the CLI's order, where it has them). */
export const exportColumns: ExportColumn[] = [
  { key: "id", choice: "id", inventory: false, get: (d) => d.id },
  { key: "hostname", choice: "hostname", inventory: false, get: (d) => d.hostname },
  { key: "online", choice: "online", inventory: false, get: (d) => d.online },
  { key: "last_seen", choice: "last_seen", inventory: false, get: (d) => tsDate(d.lastSeen)?.toISOString().replace(/\.\d{3}Z$/, "Z") ?? "" },
  { key: "os_name", choice: "os", inventory: false, get: (d, inv) => or(d.os, inv?.os?.name) },
  { key: "os_version", choice: "os_version", inventory: true, get: (_, inv) => inv?.os?.version ?? "" },
  { key: "kernel", choice: "kernel", inventory: true, get: (_, inv) => inv?.os?.kernel ?? "" },
  { key: "model", choice: "model", inventory: false, get: (d, inv) => or(d.model, inv?.system?.model) },
  { key: "serial", choice: "serial", inventory: true, get: (_, inv) => inv?.system?.serial ?? "" },
  { key: "cpu_model", choice: "cpu", inventory: false, get: (d, inv) => or(d.cpuModel, inv?.cpu?.model) },
  { key: "memory_bytes", choice: "ram", inventory: false, get: (d, inv) => bytes(d.memoryBytes || inv?.memory?.totalBytes || 0n) },
  { key: "disk_total_bytes", choice: "disk", inventory: false, get: (d) => bytes(d.diskTotalBytes) },
  { key: "disk_used_bytes", choice: "disk", inventory: false, get: (d) => bytes(d.diskUsedBytes) },
  { key: "disk_free_bytes", choice: "disk", inventory: false, get: (d) => bytes(d.diskFreeBytes) },
  {
    key: "disk_free_percent", choice: "disk", inventory: false,
    get: (d) => {
      // df's measure: available against used plus available.
      const p = d.diskTotalBytes > 0n ? pct(d.diskFreeBytes, d.diskUsedBytes + d.diskFreeBytes) : undefined;
      return p === undefined ? null : Math.round(p * 10) / 10;
    },
  },
  { key: "ip_addresses", choice: "ip_addresses", inventory: true, get: (_, inv) => addresses(inv).ips.join(" ") },
  { key: "mac_addresses", choice: "mac_addresses", inventory: true, get: (_, inv) => addresses(inv).macs.join(" ") },
  { key: "user", choice: "user", inventory: false, get: (d) => d.user },
  { key: "agent_version", choice: "agent_version", inventory: false, get: (d) => d.agentVersion },
  { key: "software_count", choice: "software_count", inventory: true, get: (_, inv) => inv?.software.length ?? 0 },
];

/** columnsFor returns the columns of the chosen checkboxes, in file order. */
export function columnsFor(chosen: ReadonlySet<string>): ExportColumn[] {
  return exportColumns.filter((c) => chosen.has(c.choice));
}

function isLoopback(ip: string): boolean {
  const v = ip.toLowerCase();
  return /^127\./.test(v) || /^::ffff:127\./.test(v) || v === "::1" || /^(0{1,4}:){7}0{0,3}1$/.test(v);
}

/**
 * addresses lists a device's IP addresses (prefix lengths dropped, no
 * loopback) and MAC addresses (no empty or all-zero ones), each once, in
 * reported order, like the CLI.
 */
export function addresses(inv: Inventory | undefined): { ips: string[]; macs: string[] } {
  const ips: string[] = [], macs: string[] = [];
  for (const n of inv?.nics ?? []) {
    for (let a of n.addresses) {
      a = a.trim();
      const ip = a.replace(/\/\d{1,3}$/, "");
      if (ip === "" || isLoopback(ip) || ips.includes(ip)) continue;
      ips.push(ip);
    }
    const m = n.mac.trim();
    if (m !== "" && m.replace(/[0:\-]/g, "") !== "" && !macs.includes(m)) macs.push(m);
  }
  return { ips, macs };
}

/** row is one device's values for the columns. */
export function row(cols: ExportColumn[], d: Device, inv: Inventory | undefined): Value[] {
  return cols.map((c) => c.get(d, inv));
}

/** toCSV renders a header row and the rows; every cell is neutralised (see csv.ts). */
export function toCSV(cols: ExportColumn[], rows: Value[][]): string {
  const str = (v: Value) => (v === null ? "" : String(v));
  return csvLine(cols.map((c) => c.key)) + rows.map((r) => csvLine(r.map(str))).join("");
}

/** toJSON renders an array of objects keyed by column name. */
export function toJSON(cols: ExportColumn[], rows: Value[][]): string {
  const objs = rows.map((r) => Object.fromEntries(cols.map((c, i) => [c.key, r[i] ?? null])));
  return JSON.stringify(objs, null, 2) + "\n";
}

/** exportFileName is "deskside-fleet-YYYYMMDD-HHMM.csv" (local time). */
export function exportFileName(now: Date, format: "csv" | "json"): string {
  return `deskside-fleet-${fileStamp(now)}.${format}`;
}
