// The fleet page's filter: what the technician set, how it reads and writes
// the URL hash query (so a reload keeps it), and the ListDevices request it
// becomes. Pure, no DOM: test/fleetquery.test.ts runs it under node.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { DeviceSort, type ListDevicesRequestSchema } from "./gen/deskside/v1/console_pb";

export type OnlineFilter = "all" | "online" | "offline";

export interface FleetFilter {
  q: string;
  online: OnlineFilter;
  os: string;
  user: string;
  model: string;
  ramBelow8: boolean;
  diskBelow10: boolean;
  sort: DeviceSort;
  desc: boolean;
}

export const GiB = 1024n * 1024n * 1024n;
/** The "RAM < 8 GiB" filter. */
export const lowMemoryBytes = 8n * GiB;
/** The "Disk free < 10 %" filter. */
export const lowDiskPercent = 10;

export const defaultFilter: Readonly<FleetFilter> = {
  q: "",
  online: "all",
  os: "",
  user: "",
  model: "",
  ramBelow8: false,
  diskBelow10: false,
  sort: DeviceSort.UNSPECIFIED,
  desc: false,
};

// URL names of the sort orders.
const sortNames: ReadonlyArray<[string, DeviceSort]> = [
  ["hostname", DeviceSort.HOSTNAME],
  ["last-seen", DeviceSort.LAST_SEEN],
  ["os", DeviceSort.OS],
  ["model", DeviceSort.MODEL],
  ["memory", DeviceSort.MEMORY],
  ["disk-free", DeviceSort.DISK_FREE],
  ["user", DeviceSort.USER],
  ["online", DeviceSort.ONLINE],
  ["cpu", DeviceSort.CPU],
];

/** parseFleetQuery reads a filter from a hash query ("q=web&online=offline"); unknown values fall back to defaults. */
export function parseFleetQuery(query: string): FleetFilter {
  const p = new URLSearchParams(query);
  const str = (k: string) => (p.get(k) ?? "").slice(0, 256);
  const online = p.get("online");
  const sortName = p.get("sort");
  return {
    q: str("q"),
    online: online === "online" || online === "offline" ? online : "all",
    os: str("os"),
    user: str("user"),
    model: str("model"),
    ramBelow8: p.get("ram") === "lt8",
    diskBelow10: p.get("disk") === "lt10",
    sort: sortNames.find(([n]) => n === sortName)?.[1] ?? DeviceSort.UNSPECIFIED,
    desc: p.get("desc") === "1",
  };
}

/** fleetQueryString writes the non-default parts of f, in a fixed order. */
export function fleetQueryString(f: FleetFilter): string {
  const p = new URLSearchParams();
  if (f.q) p.set("q", f.q);
  if (f.online !== "all") p.set("online", f.online);
  if (f.os) p.set("os", f.os);
  if (f.user) p.set("user", f.user);
  if (f.model) p.set("model", f.model);
  if (f.ramBelow8) p.set("ram", "lt8");
  if (f.diskBelow10) p.set("disk", "lt10");
  const sort = sortNames.find(([, v]) => v === f.sort)?.[0];
  if (sort && f.sort !== DeviceSort.UNSPECIFIED) p.set("sort", sort);
  if (f.desc) p.set("desc", "1");
  return p.toString();
}

/** isFiltered reports whether f narrows the fleet (sorting does not). */
export function isFiltered(f: FleetFilter): boolean {
  return f.q.trim() !== "" || f.online !== "all" || f.os.trim() !== "" || f.user.trim() !== "" || f.model.trim() !== "" || f.ramBelow8 || f.diskBelow10;
}

/** listRequest is the ListDevices (and ExportInventory) filter for f. */
export function listRequest(f: FleetFilter): MessageInitShape<typeof ListDevicesRequestSchema> {
  return {
    query: f.q.trim(),
    os: f.os.trim(),
    user: f.user.trim(),
    model: f.model.trim(),
    online: f.online === "all" ? undefined : f.online === "online",
    memoryBelowBytes: f.ramBelow8 ? lowMemoryBytes : 0n,
    diskFreeBelowPercent: f.diskBelow10 ? lowDiskPercent : 0,
    sort: f.sort,
    descending: f.desc,
  };
}
