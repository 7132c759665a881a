// The device page: header (with the remote-session buttons and, for
// admins, the remote access policy: pages/remote.ts), then two tabs. Overview: inventory by section,
// latest health, health charts over 1 h / 24 h / 7 d, and the inventory
// change history. Diagnostics (pages/diag.ts): checks, stored reports, the
// command pane and remediation actions. Every
// string in Device, Inventory, HealthSample and InventoryChange comes from
// the agent and is hostile: it only ever becomes text nodes, and CSS keeps
// long values from breaking the layout.

import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { checkSession, client, explain, isCanceled } from "../api";
import { byteUnit, lineChart, numTick, plotW, type Series } from "../chart";
import { debounce, field, h, replace, setText, uid, type Child } from "../dom";
import { ceilPct, dfUsePct, fmtCount, fmtPct, fmtTime, formatBytes, formatRate, pct, plural, roughDuration, sizeOrDash, toNum, tsDate } from "../format";
import type { Device, GetDeviceResponse, HealthPoint, InventoryChange } from "../gen/deskside/v1/console_pb";
import type { EndpointTrust } from "../gen/deskside/v1/envelope_pb";
import type { HealthSample, Inventory, ProcessUsage } from "../gen/deskside/v1/inventory_pb";
import { setRelTime, watchDevices } from "../live";
import { card, kvList, notice, type Page, type Session } from "../page";
import { tabs, type Tabs } from "../tabs";
import { diagnosticsPanel } from "./diag";
import { statusBadge } from "./fleet";
import { remoteControls } from "./remote";

const ranges = [
  { key: "1h", label: "1 h", ms: 3600_000 },
  { key: "24h", label: "24 h", ms: 24 * 3600_000 },
  { key: "7d", label: "7 d", ms: 7 * 24 * 3600_000 },
] as const;
type RangeKey = (typeof ranges)[number]["key"];

const historyLimit = 500;
const softwareShown = 200;

/** table builds a data table; cells are strings (made text) or nodes. */
function dataTable(headers: string[], rows: Child[][], attrs: { testid?: string; cls?: string; label?: string } = {}): HTMLElement {
  // The wrapper scrolls sideways if a table cannot fit, so the page never does.
  return h("div", { class: "table-scroll" }, h("table", { class: "grid " + (attrs.cls ?? ""), data: { testid: attrs.testid }, "aria-label": attrs.label },
    h("thead", null, h("tr", null, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", null, rows.map((r) => h("tr", null, r.map((c) => h("td", null, typeof c === "string" ? field(c) : c))))),
  ));
}

/** usageBar is a bar with the used share (width set through CSSOM, allowed by the CSP) and the numbers. */
/** usageBar shows a percentage (undefined: unknown) as a bar and "17 % used". */
function usageBar(p: number | undefined): HTMLElement {
  const fill = h("span", { class: "bar-fill" });
  if (p !== undefined) fill.style.width = `${Math.min(100, Math.max(0, p)).toFixed(1)}%`;
  if (p !== undefined && p >= 90) fill.classList.add("bar-high");
  return h("span", { class: "usage" },
    h("span", { class: "bar", "aria-hidden": "true" }, fill),
    h("span", { class: "usage-text" }, p === undefined ? "–" : `${fmtPct(p)} used`),
  );
}

/** endpointRefusals are why the device, by its own policy (deskside-agent
 * policy on the device, as its agent last reported it), refuses commands
 * and actions, and desktop sessions; "" when it does not. */
function endpointRefusals(t: EndpointTrust | undefined): { commands: string; desktop: string } {
  if (!t) return { commands: "", desktop: "" };
  if (t.policyError) {
    const why = "This device's local policy cannot be read, so it refuses everything privileged; fix it on the device with deskside-agent policy.";
    return { commands: why, desktop: why };
  }
  return {
    commands: t.noCommands ? "This device's own policy turns off remote commands and actions (set on the device: deskside-agent policy)." : "",
    desktop: t.noDesktop ? "This device's own policy turns off remote-desktop sessions (set on the device: deskside-agent policy)." : "",
  };
}

/** endpointCard shows what the device enforces whatever the relay says;
 * every value comes from the agent and only becomes text. */
function endpointCard(t: EndpointTrust | undefined): HTMLElement {
  if (!t) {
    return h("section", { class: "card endpoint-card", data: { testid: "endpoint-card" } }, h("h2", null, "Endpoint policy"),
      h("p", { class: "muted", data: { testid: "endpoint-unreported" } }, "Not reported yet: the agent reports it when it connects (older agents never do)."));
  }
  const why = endpointRefusals(t);
  const state = (refusal: string, key: string) => refusal
    ? h("span", { class: "endpoint-refused", data: { testid: `endpoint-${key}`, refused: "true" } }, "Refused", h("span", { class: "endpoint-why" }, " — " + refusal))
    : h("span", { data: { testid: `endpoint-${key}`, refused: "false" } }, "Allowed");
  return h("section", { class: "card endpoint-card", data: { testid: "endpoint-card" } },
    h("h2", null, "Endpoint policy"),
    h("p", { class: "muted" }, "Set on the device itself (deskside-agent policy); it wins over anything the relay says."),
    kvList([
      ["Organisation key", t.orgFingerprint
        ? h("span", null, "Pinned ", h("code", { class: "clip", data: { testid: "endpoint-pin" } }, t.orgFingerprint), " (runs only technicians' signed requests)")
        : h("span", { data: { testid: "endpoint-pin" } }, "Not pinned: obeys the relay")],
      ["Commands and actions", state(why.commands, "commands")],
      ["Desktop sessions", state(why.desktop, "desktop")],
      ["Consent", h("span", { data: { testid: "endpoint-consent" } }, t.alwaysAsk ? "Always asks the logged-in user, even when the remote-access policy is unattended" : "As the remote-access policy says")],
      ["Groups", h("span", { class: "wrap", data: { testid: "endpoint-groups" } }, t.groups.length ? t.groups.join(", ") : "None")],
      ["Policy error", t.policyError ? h("span", { class: "endpoint-refused wrap" }, t.policyError) : ""],
    ]),
  );
}

/** refuseButtons disables the buttons the device refuses, with the reason
 * as their tooltip; once it no longer refuses, enable gives back those it
 * disabled itself (other modules own their state otherwise). */
function refuseButtons(buttons: Iterable<HTMLButtonElement>, why: string, enable: (b: HTMLButtonElement) => void): void {
  for (const b of buttons) {
    if (why) {
      b.disabled = true;
      b.title = why;
      b.dataset["endpointRefused"] = "true";
    } else if (b.dataset["endpointRefused"]) {
      delete b.dataset["endpointRefused"];
      enable(b);
    }
  }
}

function joinNonEmpty(parts: Array<string | undefined>, sep = " "): string {
  return parts.filter((p) => p && p.trim()).join(sep);
}

/** devicePage builds the page of one device. */
export function devicePage(session: Session, id: string, query = ""): Page {
  const life = new AbortController();
  const diag = diagnosticsPanel(session, id, life.signal);
  const remote = remoteControls(session, id, life.signal);
  let tabBar: Tabs | undefined;
  const initialTab = new URLSearchParams(query).get("tab") === "diagnostics" ? "diagnostics" : "overview";
  let device: Device | undefined;
  let inventory: Inventory | undefined;
  let range: RangeKey = "1h";

  const hostname = h("h1", { class: "device-title clip", data: { testid: "device-hostname" } }, "Device");
  const badgeSlot = h("span");
  let badge: ReturnType<typeof statusBadge> | undefined;
  const seen = h("time");
  const meta = h("dl", { class: "meta" });
  const refreshBtn = h("button", { type: "button", class: "btn btn-primary", hidden: true, data: { testid: "refresh-inventory" } }, "Refresh inventory");
  const actionStatus = h("div", { class: "action-status" });
  const healthSlot = h("div", { class: "health-latest" }, h("p", { class: "loading" }, "Loading…"));
  const chartsSlot = h("div", { class: "charts" });
  const rangeBtns = ranges.map((r) => {
    const b = h("button", { type: "button", class: "seg", "aria-pressed": String(r.key === range), data: { range: r.key } }, r.label);
    b.addEventListener("click", () => {
      range = r.key;
      for (const x of rangeBtns) x.setAttribute("aria-pressed", String(x.dataset["range"] === range));
      void loadHealth();
    });
    return b;
  });
  const invSlot = h("div", { class: "inventory" }, h("p", { class: "loading" }, "Loading inventory…"));
  const historySlot = h("div", null, h("p", { class: "loading" }, "Loading history…"));
  const endpointSlot = h("div", { class: "endpoint-slot" });
  const top = h("div", { class: "page-body" });

  const el = h("div", { class: "page page-device" },
    h("p", { class: "crumbs" }, h("a", { href: "#/fleet" }, "← Fleet")),
    h("div", { class: "page-head device-head" },
      h("div", { class: "device-head-main" }, h("div", { class: "title-row" }, hostname, badgeSlot), meta),
      // Refresh inventory shows once the device is known to be online: it
      // comes first, so that appearing it does not move New ticket from
      // under a pointer (the actions are aligned to the right).
      h("div", { class: "page-actions" },
        refreshBtn,
        h("a", { href: "#/tickets/new?" + new URLSearchParams({ device: id }).toString(), class: "btn", data: { testid: "device-new-ticket" } }, "New ticket")),
    ),
    h("div", { class: "device-remote" }, remote.buttons, remote.policy),
    endpointSlot,
    actionStatus,
    top,
  );

  function drawHeader(d: Device): void {
    device = d;
    const name = d.hostname || d.id;
    setText(hostname, name);
    hostname.title = name.length > 30 ? name : "";
    document.title = `${name.slice(0, 60)} · Deskside`;
    if (!badge) {
      badge = statusBadge(d);
      replace(badgeSlot, badge.el);
    } else badge.update(d);
    setRelTime(seen, tsDate(d.lastSeen));
    replace(meta,
      h("div", null, h("dt", null, "Last seen"), h("dd", null, seen)),
      h("div", null, h("dt", null, "Agent"), h("dd", null, field(d.agentVersion))),
      h("div", null, h("dt", null, "OS"), h("dd", null, field(joinNonEmpty([d.osDisplay || d.os, d.arch])))),
      d.user ? h("div", null, h("dt", null, "User"), h("dd", null, field(d.user))) : null,
      h("div", null, h("dt", null, "ID"), h("dd", null, h("code", { class: "clip" }, d.id))),
    );
    refreshBtn.hidden = !(d.online && !d.revoked);
    diag.setDevice(d);
    remote.setDevice(d);
    drawEndpoint(d);
  }

  // What the device refuses by its own policy: the card, and the buttons
  // that would only be refused (the agent decides anyway).
  function drawEndpoint(d: Device): void {
    replace(endpointSlot, endpointCard(d.endpointTrust));
    const why = endpointRefusals(d.endpointTrust);
    const online = d.online && !d.revoked;
    // remote.setDevice has just set its buttons' state again: leave it.
    refuseButtons(remote.buttons.querySelectorAll<HTMLButtonElement>("button[data-testid=remote-view], button[data-testid=remote-control]"), why.desktop, () => {});
    refuseButtons(diag.el.querySelectorAll<HTMLButtonElement>("button[data-testid=cmd-run], button[data-testid=action-run]"), why.commands, (b) => {
      b.disabled = !online;
      b.title = "";
    });
  }

  // --- latest health ---------------------------------------------------------
  function procTable(title: string, ps: ProcessUsage[]): Child {
    if (ps.length === 0) return null;
    return h("div", { class: "sub" }, h("h3", null, title),
      dataTable(["PID", "Name", "User", "CPU (1 core = 100 %)", "Memory"], ps.map((p) => [String(p.pid), p.name, p.user, `${p.cpuPercent.toFixed(1)} %`, formatBytes(p.rssBytes)]), { cls: "compact procs" }));
  }

  function drawHealth(hs: HealthSample | undefined): void {
    if (!hs) {
      replace(healthSlot, h("p", { class: "muted" }, "No health samples yet: the agent sends them once connected."));
      return;
    }
    const sampled = h("time");
    setRelTime(sampled, tsDate(hs.time));
    const memTotal = hs.memTotalBytes;
    const stats: Array<[string, string]> = [
      ["CPU", `${hs.cpuPercent.toFixed(1)} % of all cores`],
      ["Load", `${hs.load1.toFixed(2)} ${hs.load5.toFixed(2)} ${hs.load15.toFixed(2)}`],
      ["Memory", memTotal > 0n ? `${formatBytes(hs.memUsedBytes)} of ${formatBytes(memTotal)} (${fmtPct(pct(hs.memUsedBytes, memTotal))})` : formatBytes(hs.memUsedBytes) + " used"],
      ["Swap", hs.swapTotalBytes > 0n ? `${formatBytes(hs.swapUsedBytes)} of ${formatBytes(hs.swapTotalBytes)}` : "none"],
      ["Network", `↓ ${formatRate(hs.netRxBytesPerSec)}  ↑ ${formatRate(hs.netTxBytesPerSec)}`],
    ];
    replace(healthSlot,
      h("p", { class: "muted" }, "Sampled ", sampled, "."),
      h("div", { class: "stats" }, stats.map(([k, v]) => h("div", { class: "stat" }, h("span", { class: "stat-label" }, k), h("span", { class: "stat-value" }, v)))),
      hs.mounts.length ? h("div", { class: "sub" }, h("h3", null, "File systems"),
        dataTable(["Mount", "Usage", "Free", "Size"], hs.mounts.map((m) => [
          m.mountpoint, usageBar(ceilPct(m.usedPercent)), formatBytes(m.freeBytes), sizeOrDash(m.totalBytes),
        ]), { cls: "compact" })) : null,
      h("div", { class: "sub-grid" }, procTable("Top processes by CPU", hs.topCpu), procTable("Top processes by memory", hs.topMemory)),
      hs.temperatures.length ? h("div", { class: "sub" }, h("h3", null, "Temperatures"),
        dataTable(["Sensor", "°C"], hs.temperatures.map((t) => [t.sensor, t.celsius.toFixed(0)]), { cls: "compact" })) : null,
    );
  }

  // --- health charts ---------------------------------------------------------
  let healthAbort: AbortController | undefined;
  async function loadHealth(): Promise<void> {
    healthAbort?.abort();
    healthAbort = new AbortController();
    const signal = AbortSignal.any([life.signal, healthAbort.signal]);
    const r = ranges.find((x) => x.key === range)!;
    const to = Date.now(), from = to - r.ms;
    chartsSlot.setAttribute("aria-busy", "true");
    chartsSlot.classList.add("is-loading");
    try {
      const resp = await client.getHealthHistory({ id, from: timestampFromMs(from), to: timestampFromMs(to) }, { signal });
      drawCharts(resp.points, from, to, r.label);
    } catch (err) {
      if (isCanceled(err) || signal.aborted) return;
      checkSession(err);
      replace(chartsSlot, notice("error", "Could not load the health history. ", explain(err)));
    } finally {
      if (!signal.aborted) {
        chartsSlot.removeAttribute("aria-busy");
        chartsSlot.classList.remove("is-loading");
      }
    }
  }

  function drawCharts(points: HealthPoint[], from: number, to: number, label: string): void {
    // A downsampled point stands for its bucket: plot it in the middle.
    const t = (p: HealthPoint) => {
      const ms = tsDate(p.time)?.getTime() ?? 0;
      const b = p.bucket ? Number(p.bucket.seconds) * 1000 + p.bucket.nanos / 1e6 : 0;
      return ms + b / 2;
    };
    const times = points.map(t);
    const diffs: number[] = [];
    for (let i = 1; i < times.length; i++) diffs.push(times[i]! - times[i - 1]!);
    diffs.sort((a, b) => a - b);
    const median = diffs.length ? diffs[Math.floor(diffs.length / 2)]! : 60_000;
    const gapMs = Math.max(3 * median, 3 * ((to - from) / plotW), 90_000);

    const memTotal = inventory?.memory?.totalBytes ?? device?.memoryBytes ?? 0n;
    const memMax = Math.max(toNum(memTotal), ...points.map((p) => toNum(p.memUsedBytes)));
    const memU = byteUnit(memMax || 1);
    const netMax = Math.max(0, ...points.map((p) => Math.max(p.netRxBytesPerSec, p.netTxBytesPerSec)));
    const netU = byteUnit(netMax || 1);
    const series = (label: string, cls: string, f: (p: HealthPoint) => number): Series => ({ label, cls, points: points.map((p, i) => [times[i]!, f(p)]) });
    const summary = (vals: number[], fmt: (v: number) => string) => {
      if (vals.length === 0) return "No samples.";
      const avg = vals.reduce((a, b) => a + b, 0) / vals.length;
      return `Latest ${fmt(vals[vals.length - 1]!)}, average ${fmt(avg)}, peak ${fmt(Math.max(...vals))}.`;
    };
    const chartCard = (title: string, chart: SVGSVGElement, legend: Child, sum: string) =>
      h("figure", { class: "chart-card" }, h("figcaption", null, h("span", { class: "chart-title" }, title), legend), chart, h("p", { class: "chart-sum" }, sum));
    const legend = (items: Array<[string, string]>) => h("span", { class: "legend" }, items.map(([l, cls]) => h("span", { class: "legend-item" }, h("span", { class: `swatch ${cls}`, "aria-hidden": "true" }), l)));

    const cpu = points.map((p) => p.cpuPercent);
    const mem = points.map((p) => toNum(p.memUsedBytes));
    const disk = points.map((p) => p.diskUsedPercent);
    const memTitle = memTotal > 0n ? `Memory used (of ${formatBytes(memTotal)})` : "Memory used";
    replace(chartsSlot,
      points.length === 0 ? h("p", { class: "muted" }, `No health samples in the last ${label}.`) : null,
      chartCard("CPU", lineChart({ title: `CPU usage, last ${label}, percent`, from, to, series: [series("CPU", "s1", (p) => p.cpuPercent)], yMax: 100, yTick: numTick, unit: "%", gapMs }),
        null, summary(cpu, (v) => `${v.toFixed(0)} %`)),
      chartCard(memTitle, lineChart({
        title: `${memTitle}, last ${label}, ${memU.name}`, from, to, series: [series("Memory used", "s2", (p) => toNum(p.memUsedBytes) / memU.div)],
        yMax: memTotal > 0n ? toNum(memTotal) / memU.div : undefined, yTick: numTick, unit: memU.name, gapMs,
      }), null, summary(mem, (v) => formatBytes(v))),
      chartCard("Disk used", lineChart({ title: `Disk used, last ${label}, percent`, from, to, series: [series("Disk used", "s3", (p) => p.diskUsedPercent)], yMax: 100, yTick: numTick, unit: "%", gapMs }),
        null, summary(disk, (v) => `${v.toFixed(1)} %`)),
      chartCard("Network", lineChart({
        title: `Network receive and send, last ${label}, ${netU.name}/s`, from, to,
        series: [series("Receive", "s4", (p) => p.netRxBytesPerSec / netU.div), series("Send", "s5", (p) => p.netTxBytesPerSec / netU.div)],
        yTick: numTick, unit: `${netU.name}/s`, gapMs,
      }), legend([["Receive", "s4"], ["Send", "s5"]]),
        points.length ? `Receive: ${summary(points.map((p) => p.netRxBytesPerSec), formatRate)} Send: ${summary(points.map((p) => p.netTxBytesPerSec), formatRate)}` : "No samples."),
    );
  }

  // --- inventory -------------------------------------------------------------
  function drawInventory(d: Device, inv: Inventory | undefined): void {
    inventory = inv;
    const memTotal = inv?.memory?.totalBytes || d.memoryBytes;
    const ram = h("span", { data: { testid: "device-ram-total", bytes: memTotal.toString() } }, sizeOrDash(memTotal));
    if (!inv) {
      replace(invSlot,
        notice("info", "No inventory received yet: the agent sends one after it connects",
          d.online ? " (or use Refresh inventory)." : "."),
        h("div", { class: "cards" }, card("Memory", kvList([["Total", ram]]))),
      );
      return;
    }
    const sys = inv.system, bios = inv.bios, os = inv.os, cpu = inv.cpu;
    const boot = tsDate(inv.bootTime);
    const collectedAt = tsDate(inv.collectedAt);
    const collected = h("time");
    setRelTime(collected, collectedAt);
    const biosLine = joinNonEmpty([bios?.vendor, bios?.version, bios?.date ? `(${bios.date})` : ""]);

    const cards: Child[] = [
      card("System", kvList([
        ["Manufacturer", sys?.manufacturer ?? ""], ["Model", sys?.model ?? ""], ["Serial", sys?.serial ?? ""],
        ["UUID", sys?.uuid ?? ""], ["BIOS", biosLine], ["Reported hostname", inv.hostname],
      ])),
      card("Operating system", kvList([
        ["Name", joinNonEmpty([os?.name, os?.version])], ["Build", os?.build ?? ""], ["Kernel", os?.kernel ?? ""],
        ["Architecture", os?.arch ?? ""], ["Family", os?.family ?? ""],
        ["Booted", boot ? `${fmtTime(boot)} (up ${roughDuration(Date.now() - boot.getTime())})` : ""],
      ])),
      card("CPU", kvList([
        ["Model", cpu?.model ?? ""], ["Vendor", cpu?.vendor ?? ""],
        ["Cores", cpu && (cpu.cores || cpu.threads) ? `${cpu.cores} cores, ${cpu.threads} threads` : ""],
        ["Speed", cpu && cpu.mhz > 0 ? `${cpu.mhz.toFixed(0)} MHz` : ""], ["Sockets", cpu && cpu.sockets ? String(cpu.sockets) : ""],
      ])),
      card("Memory", kvList([["Total", ram], ["Swap", sizeOrDash(inv.memory?.swapTotalBytes ?? 0n)]])),
    ];

    const wide: Child[] = [];
    if (inv.disks.length || inv.partitions.length) {
      wide.push(card("Disks",
        inv.disks.length ? dataTable(["Name", "Model", "Serial", "Size", "Type"], inv.disks.map((dk) => [
          dk.name, dk.model, dk.serial, sizeOrDash(dk.sizeBytes), (dk.rotational ? "HDD" : "SSD") + (dk.removable ? ", removable" : ""),
        ]), { label: "Disks" }) : null,
        inv.partitions.length ? h("div", { class: "sub" }, h("h3", null, "Partitions"),
          dataTable(["Mount", "Device", "File system", "Size", "Free", "Usage"], inv.partitions.map((p) => {
            // As df: free is what users can write (f_bavail), usage is used / (used + free).
            return [p.mountpoint, p.device, p.fstype, sizeOrDash(p.totalBytes), formatBytes(p.freeBytes), usageBar(dfUsePct(p.usedBytes, p.freeBytes))];
          }), { label: "Partitions" })) : null,
      ));
    }
    if (inv.nics.length) {
      wide.push(card("Network",
        dataTable(["Name", "MAC", "Addresses", "State", "Speed", "MTU"], inv.nics.map((n) => [
          n.name, n.mac, h("span", { class: "wrap addresses" }, n.addresses.join(" ") || "–"), n.up ? "up" : "down",
          n.speedMbps > 0n ? `${n.speedMbps} Mbit/s` : "–", n.mtu ? String(n.mtu) : "–",
        ]), { label: "Network interfaces" })));
    }
    wide.push(softwareCard(inv));
    if (inv.users.length) {
      wide.push(card("Users", dataTable(["Name", "Terminal", "From", "Since"], inv.users.map((u) => [u.name, u.terminal, u.host, fmtTime(tsDate(u.started))]), { label: "Logged-in users" })));
    }
    if (inv.gpus.length) wide.push(card("GPUs", dataTable(["Vendor", "Model", "Driver"], inv.gpus.map((g) => [g.vendor, g.model, g.driver]))));
    if (inv.batteries.length) {
      wide.push(card("Batteries", dataTable(["Name", "Charge", "State", "Health"], inv.batteries.map((b) => [
        b.name, `${b.chargePercent.toFixed(0)} %`, b.state,
        b.designWh > 0 ? `${((b.fullWh * 100) / b.designWh).toFixed(0)} % (${b.fullWh.toFixed(1)} of ${b.designWh.toFixed(1)} Wh)` : "–",
      ]))));
    }
    if (inv.errors.length) wide.push(card("Not collected", dataTable(["Section", "Reason"], inv.errors.map((e) => [e.section, h("span", { class: "wrap" }, e.message)]))));

    replace(invSlot,
      collectedAt ? h("p", { class: "muted" }, "Inventory collected ", collected, ".") : null,
      h("div", { class: "cards" }, cards),
      wide,
    );
  }

  function softwareCard(inv: Inventory): HTMLElement {
    const all = [...inv.software].sort((a, b) => {
      const x = a.name.toLowerCase(), y = b.name.toLowerCase();
      return x < y ? -1 : x > y ? 1 : a.version < b.version ? -1 : a.version > b.version ? 1 : 0;
    });
    const fid = uid("software-filter");
    const input = h("input", { id: fid, type: "search", placeholder: "Filter by name, version or source", autocomplete: "off", spellcheck: "false", data: { testid: "software-filter" } });
    const slot = h("div");
    const count = h("p", { class: "muted", "aria-live": "polite" });
    const draw = () => {
      const q = input.value.trim().toLowerCase();
      const match = q ? all.filter((s) => s.name.toLowerCase().includes(q) || s.version.toLowerCase().includes(q) || s.source.toLowerCase().includes(q)) : all;
      const shown = match.slice(0, softwareShown);
      setText(count, q ? `${plural(match.length, "package")} match.` : "");
      replace(slot,
        shown.length ? h("div", { class: "scroll-box", tabindex: "0", role: "region", "aria-label": "Installed software list" },
          dataTable(["Name", "Version", "Source"], shown.map((s) => [s.name, s.version, s.source]), { testid: "software-table", label: "Installed software" })) :
          h("p", { class: "muted" }, all.length ? "No package matches the filter." : "No software reported."),
        match.length > shown.length ? h("p", { class: "muted" }, `… and ${fmtCount(match.length - shown.length)} more: refine the filter to see them.`) : null,
      );
    };
    input.addEventListener("input", debounce(draw, 120));
    draw();
    return h("section", { class: "card" },
      h("h2", null, `Software (${plural(all.length, "package")})`),
      all.length ? h("div", { class: "filter" }, h("label", { for: fid }, "Filter"), input) : null,
      count, slot,
    );
  }

  // --- history ---------------------------------------------------------------
  async function loadHistory(): Promise<void> {
    try {
      const resp = await client.getInventoryHistory({ id, limit: historyLimit }, { signal: life.signal });
      drawHistory(resp.changes);
    } catch (err) {
      if (isCanceled(err) || life.signal.aborted) return;
      checkSession(err);
      replace(historySlot, notice("error", "Could not load the change history. ", explain(err)));
    }
  }

  function drawHistory(changes: InventoryChange[]): void {
    const rows = changes.map((c) => h("tr", null,
      h("td", { class: "nowrap" }, fmtTime(tsDate(c.time))),
      h("td", null, field(c.field)),
      h("td", null, h("span", { class: "change" },
        h("span", { class: "from wrap" }, c.from || "(none)"),
        h("span", { class: "arrow", "aria-label": "changed to" }, " → "),
        h("span", { class: "to wrap" }, c.to || "(removed)"))),
    ));
    replace(historySlot, h("div", { class: "table-scroll" },
      h("table", { class: "grid history", data: { testid: "history-table" }, "aria-label": "Inventory changes" },
        h("colgroup", null, h("col", { class: "col-time" }), h("col", { class: "col-field" }), h("col")),
        h("thead", null, h("tr", null, h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "From → to"))),
        h("tbody", null, rows.length ? rows : h("tr", { class: "state-row" }, h("td", { colspan: 3 },
          h("p", { class: "muted", data: { testid: "history-empty" } },
            "No inventory changes recorded yet: changes appear once the agent reports an inventory that differs from the last.")))),
      )),
      changes.length >= historyLimit ? h("p", { class: "muted" }, `Showing the latest ${fmtCount(historyLimit)} changes.`) : null,
    );
  }

  // --- refresh ---------------------------------------------------------------
  refreshBtn.addEventListener("click", async () => {
    refreshBtn.disabled = true;
    replace(refreshBtn, "Refreshing…");
    replace(actionStatus, notice("info", "Asking the agent for its inventory (this can take up to 30 s)…"));
    try {
      const resp = await client.refreshInventory({ id }, { signal: life.signal });
      const got = await client.getDevice({ id }, { signal: life.signal });
      show(got, resp.inventory);
      void loadHistory();
      const at = tsDate(resp.inventory?.collectedAt);
      replace(actionStatus, notice("ok", `Inventory refreshed${at ? ", collected " + fmtTime(at) : ""}.`));
    } catch (err) {
      if (isCanceled(err) || life.signal.aborted) return;
      checkSession(err);
      replace(actionStatus, notice("error", "Could not refresh the inventory. ", explain(err)));
    } finally {
      refreshBtn.disabled = false;
      replace(refreshBtn, "Refresh inventory");
    }
  });

  function show(resp: GetDeviceResponse, inv?: Inventory): void {
    if (!resp.device) return;
    drawHeader(resp.device);
    drawInventory(resp.device, inv ?? resp.inventory);
    drawHealth(resp.latestHealth);
  }

  async function load(): Promise<void> {
    replace(top, h("p", { class: "loading", role: "status" }, "Loading device…"));
    let resp: GetDeviceResponse;
    try {
      resp = await client.getDevice({ id }, { signal: life.signal });
    } catch (err) {
      if (isCanceled(err) || life.signal.aborted) return;
      checkSession(err);
      setText(hostname, "Device not available");
      const retry = h("button", { type: "button", class: "btn", on: { click: () => void load() } }, "Try again");
      replace(top, notice("error", explain(err)), h("p", null, retry, " ", h("a", { href: "#/fleet", class: "btn btn-quiet" }, "Back to the fleet")));
      return;
    }
    const overview = h("div", null,
      h("section", { class: "card" }, h("h2", null, "Health"), healthSlot),
      h("section", { class: "card" },
        h("div", { class: "card-head" }, h("h2", null, "Health history"),
          h("div", { class: "segmented", role: "group", "aria-label": "Time range" }, rangeBtns)),
        chartsSlot),
      h("h2", { class: "section-title" }, "Inventory"),
      invSlot,
      h("section", { class: "card" }, h("h2", null, "Change history"), historySlot),
    );
    tabBar = tabs("Device sections", [
      { key: "overview", label: "Overview", panel: overview },
      { key: "diagnostics", label: "Diagnostics", panel: diag.el },
    ], tabBar?.selected ?? initialTab, (key) => {
      // The tab is in the address (without a history entry), so a reload
      // or a shared link opens it again.
      history.replaceState(null, "", `#/devices/${encodeURIComponent(id)}${key === "overview" ? "" : `?tab=${key}`}`);
      if (key === "diagnostics") diag.shown();
    });
    replace(top, tabBar.list, overview, diag.el);
    if (tabBar.selected === "diagnostics") diag.shown();
    show(resp);
    void loadHealth();
    void loadHistory();
    watchDevices(life.signal, {
      onDevice(d) {
        if (d.id === id) drawHeader(d);
      },
      onState() {},
      onResync() {
        client.getDevice({ id }, { signal: life.signal }).then((r) => r.device && drawHeader(r.device), () => {});
      },
    });
  }

  void load();

  return {
    el,
    title: "Device",
    dispose() {
      life.abort();
    },
  };
}
