// The fleet page: every device in a sortable, filterable, paged table that
// stays live (WatchDevices updates rows in place). Filters live in the URL
// hash query, so a reload or a shared link shows the same list.

import { checkSession, client, explain, isCanceled } from "../api";
import { debounce, h, replace, setText, uid, type Child } from "../dom";
import { dfFreePct, fmtCount, fmtPct, formatBytes, plural, sizeOrDash, tsDate } from "../format";
import { DeviceSort, type Device, type ListDevicesResponse } from "../gen/deskside/v1/console_pb";
import { defaultFilter, fleetQueryString, isFiltered, listRequest, lowDiskPercent, parseFleetQuery, type FleetFilter } from "../fleetquery";
import { setRelTime, watchDevices, type LiveState } from "../live";
import { code, notice, type Page, type Session } from "../page";
import { signingState } from "../signing";
import { openAddDevices } from "./adddevices";
import { openExport } from "./export";

export const pageSize = 50;

// Marks and counters the browser tests wait on (see README): kept for the
// whole document, across visits to the page. The counters are fields of a
// plain object the tests read as window.desksideFleet, not data- attributes:
// a live update must not write to the DOM only to be counted (at thousands
// of updates a second each write was style work the page did for nothing).
interface FleetCounters {
  renders: number; // table renders: list results, empty and error states
  updates: number; // live device updates handled (in-place row updates)
  last: string; // the id of the last device updated
  lastAt: number; // performance.now() when it was handled
}
const counters: FleetCounters = { renders: 0, updates: 0, last: "", lastAt: 0 };
(window as unknown as { desksideFleet: FleetCounters }).desksideFleet = counters;
let firstRenderMarked = false;

interface Column {
  label: string;
  sort: DeviceSort;
  cls: string;
}

const columns: Column[] = [
  { label: "Status", sort: DeviceSort.ONLINE, cls: "col-status" },
  { label: "Hostname", sort: DeviceSort.HOSTNAME, cls: "col-host" },
  { label: "User", sort: DeviceSort.USER, cls: "col-user" },
  { label: "OS", sort: DeviceSort.OS, cls: "col-os" },
  { label: "Model", sort: DeviceSort.MODEL, cls: "col-model" },
  { label: "CPU", sort: DeviceSort.CPU, cls: "col-cpu" },
  { label: "RAM", sort: DeviceSort.MEMORY, cls: "col-ram num" },
  { label: "Disk free", sort: DeviceSort.DISK_FREE, cls: "col-disk num" },
  { label: "Last seen", sort: DeviceSort.LAST_SEEN, cls: "col-seen" },
];

/** deviceState is "online", "offline" or "revoked". */
export function deviceState(d: Device): "online" | "offline" | "revoked" {
  return d.revoked ? "revoked" : d.online ? "online" : "offline";
}

/** statusBadge is a dot plus the state in words (never colour alone). */
export function statusBadge(d: Device): { el: HTMLSpanElement; update(d: Device): void } {
  const dot = h("span", { class: "dot", "aria-hidden": "true" });
  const label = h("span", { class: "status-text" });
  const el = h("span", { class: "status" }, dot, label);
  const update = (d: Device) => {
    const st = deviceState(d);
    el.className = `status status-${st}`;
    setText(label, st === "online" ? "Online" : st === "revoked" ? "Revoked" : "Offline");
  };
  update(d);
  return { el, update };
}

interface Row {
  tr: HTMLTableRowElement;
  device: Device;
  update(d: Device): void;
}

function cellText(cls = "clip"): HTMLSpanElement {
  return h("span", { class: cls });
}

function setCell(el: HTMLElement, v: string): void {
  setText(el, v || "–");
  el.title = v.length > 20 ? v : "";
}

function makeRow(d: Device): Row {
  const status = statusBadge(d);
  const host = h("a", { href: `#/devices/${encodeURIComponent(d.id)}`, class: "clip host" });
  const user = cellText(), os = cellText(), model = cellText(), cpu = cellText();
  const ram = h("span");
  const diskAbs = h("span"), diskPct = h("span", { class: "muted" });
  const seen = h("time");
  const tr = h("tr", { data: { testid: "device-row", deviceId: d.id } },
    h("td", { class: "col-status" }, status.el),
    h("td", { class: "col-host" }, host),
    h("td", { class: "col-user" }, user),
    h("td", { class: "col-os" }, os),
    h("td", { class: "col-model" }, model),
    h("td", { class: "col-cpu" }, cpu),
    h("td", { class: "col-ram num" }, ram),
    h("td", { class: "col-disk num" }, diskAbs, " ", diskPct),
    h("td", { class: "col-seen" }, seen),
  );
  const row: Row = {
    tr,
    device: d,
    update(d: Device) {
      row.device = d;
      tr.dataset["online"] = String(d.online);
      tr.classList.toggle("is-offline", !d.online);
      status.update(d);
      setCell(host, d.hostname || d.id);
      host.title = d.hostname.length > 20 ? d.hostname : "";
      setCell(user, d.user);
      // The distribution and version ("Debian 12.11") once an inventory
      // has named them; the agent's OS and architecture until then.
      setCell(os, d.osDisplay || [d.os, d.arch].filter(Boolean).join(" "));
      setCell(model, d.model);
      setCell(cpu, d.cpuModel);
      setText(ram, sizeOrDash(d.memoryBytes));
      // As df: available against used plus available (reserved blocks
      // are neither), so it matches the device page's "% used".
      const freePct = d.diskTotalBytes > 0n ? dfFreePct(d.diskUsedBytes, d.diskFreeBytes) : undefined;
      setText(diskAbs, d.diskTotalBytes > 0n ? formatBytes(d.diskFreeBytes) : "–");
      setText(diskPct, freePct === undefined ? "" : `(${fmtPct(freePct)})`);
      tr.classList.toggle("is-low-disk", freePct !== undefined && freePct < lowDiskPercent);
      setRelTime(seen, tsDate(d.lastSeen));
    },
  };
  row.update(d);
  return row;
}

/** fleetPage builds the fleet page for the hash query. */
export function fleetPage(session: Session, query: string): Page {
  let filter: FleetFilter = parseFleetQuery(query);
  const life = new AbortController(); // the page's lifetime
  let listAbort: AbortController | undefined;
  let seq = 0;
  let tokens: string[] = [""]; // page tokens, the current page last
  let nextToken = "";
  let total = 0n;
  let onlineTotal: bigint | undefined;
  let shown = 0;
  const rows = new Map<string, Row>();
  const knownOnline = new Map<string, boolean>();
  let watching = false;
  let loaded = false;

  // --- toolbar -------------------------------------------------------------
  const searchID = uid("fleet-search");
  const search = h("input", {
    id: searchID, type: "search", class: "search", placeholder: "Search hostname, user, OS, model or id",
    autocomplete: "off", spellcheck: "false", maxlength: 256, value: filter.q, data: { testid: "fleet-search" },
  });
  const onlineSel = h("select", { id: uid("filter-online"), data: { testid: "filter-online" } },
    h("option", { value: "all" }, "All"),
    h("option", { value: "online" }, "Online"),
    h("option", { value: "offline" }, "Offline"),
  );
  onlineSel.value = filter.online;
  const textFilter = (label: string, value: string, testid: string) => {
    const id = uid(testid);
    const input = h("input", { id, type: "text", value, maxlength: 256, autocomplete: "off", spellcheck: "false", data: { testid } });
    return { input, el: h("div", { class: "filter" }, h("label", { for: id }, label), input) };
  };
  const osF = textFilter("OS", filter.os, "filter-os");
  const userF = textFilter("User", filter.user, "filter-user");
  const modelF = textFilter("Model", filter.model, "filter-model");
  const check = (label: string, on: boolean, testid: string) => {
    const input = h("input", { type: "checkbox", checked: on, data: { testid } });
    return { input, el: h("label", { class: "check" }, input, " ", label) };
  };
  const ramF = check("RAM < 8 GiB", filter.ramBelow8, "filter-ram-below-8");
  const diskF = check("Disk free < 10 %", filter.diskBelow10, "filter-disk-below-10");
  const clearBtn = h("button", { type: "button", class: "btn btn-quiet", data: { testid: "filter-clear" } }, "Clear filters");

  // --- header, table, pager ------------------------------------------------
  const totalEl = h("span", { class: "total", data: { testid: "fleet-total" } }, "…");
  const totalWord = h("span", null, " devices");
  const onlineCount = h("span", { class: "count-online" });
  const liveEl = h("span", { class: "live", role: "status", title: "" });
  const exportBtn = h("button", { type: "button", class: "btn", data: { testid: "export-open" } }, "Export…");
  const addBtn = h("button", { type: "button", class: "btn", data: { testid: "add-open" } }, "Add devices…");
  const pageStatus = h("div", { class: "page-status" });
  const signingSlot = h("div");

  const ths: HTMLTableCellElement[] = [];
  const headRow = h("tr");
  for (const col of columns) {
    const btn = h("button", { type: "button", class: "sort" }, col.label, h("span", { class: "sort-ind", "aria-hidden": "true" }));
    btn.addEventListener("click", () => {
      const eff = filter.sort === DeviceSort.UNSPECIFIED ? DeviceSort.HOSTNAME : filter.sort;
      if (eff === col.sort) filter = { ...filter, desc: !filter.desc };
      else filter = { ...filter, sort: col.sort, desc: false };
      applied("filter");
    });
    const th = h("th", { scope: "col", class: col.cls }, btn);
    ths.push(th);
    headRow.append(th);
  }
  const tbody = h("tbody");
  const table = h("table", { class: "grid fleet", data: { testid: "fleet-table" }, "aria-label": "Devices" },
    h("colgroup", null, columns.map((c) => h("col", { class: c.cls.split(" ")[0] }))),
    h("thead", null, headRow),
    tbody,
  );
  const prev = h("button", { type: "button", class: "btn", data: { testid: "page-prev" } }, "← Previous");
  const next = h("button", { type: "button", class: "btn", data: { testid: "page-next" } }, "Next →");
  const showing = h("span", { class: "showing", "aria-live": "polite", data: { testid: "fleet-showing" } });
  const pager = h("nav", { class: "pager", "aria-label": "Pages" }, prev, showing, next);

  const el = h("div", { class: "page page-fleet" },
    h("div", { class: "page-head" },
      h("div", null,
        h("h1", null, "Fleet"),
        h("p", { class: "counts" }, totalEl, totalWord, onlineCount, " ", liveEl),
      ),
      h("div", { class: "page-actions" }, addBtn, exportBtn),
    ),
    h("form", { class: "toolbar", role: "search", on: { submit: (e) => { e.preventDefault(); typed.cancel(); readInputs(); applied("filter"); } } },
      h("div", { class: "filter filter-search" }, h("label", { for: searchID }, "Search"), search),
      h("div", { class: "filter" }, h("label", { for: onlineSel.id }, "Status"), onlineSel),
      osF.el, userF.el, modelF.el,
      h("div", { class: "filter filter-checks" }, ramF.el, diskF.el),
      h("div", { class: "filter filter-clear" }, clearBtn),
    ),
    signingSlot,
    pageStatus,
    h("div", { class: "table-wrap" }, table),
    pager,
  );

  // --- state ---------------------------------------------------------------
  function readInputs(): void {
    filter = {
      ...filter,
      q: search.value,
      online: onlineSel.value === "online" || onlineSel.value === "offline" ? onlineSel.value : "all",
      os: osF.input.value,
      user: userF.input.value,
      model: modelF.input.value,
      ramBelow8: ramF.input.checked,
      diskBelow10: diskF.input.checked,
    };
  }

  function writeInputs(): void {
    search.value = filter.q;
    onlineSel.value = filter.online;
    osF.input.value = filter.os;
    userF.input.value = filter.user;
    modelF.input.value = filter.model;
    ramF.input.checked = filter.ramBelow8;
    diskF.input.checked = filter.diskBelow10;
  }

  /** applied: the filter or sort changed; keep it in the URL and load page one. */
  function applied(reason: "filter"): void {
    const qs = fleetQueryString(filter);
    history.replaceState(null, "", "#/fleet" + (qs ? "?" + qs : ""));
    tokens = [""];
    void load(reason);
  }

  const typed = debounce(() => {
    readInputs();
    applied("filter");
  }, 150);
  for (const input of [search, osF.input, userF.input, modelF.input]) input.addEventListener("input", typed);
  for (const input of [onlineSel, ramF.input, diskF.input]) {
    input.addEventListener("change", () => {
      typed.cancel();
      readInputs();
      applied("filter");
    });
  }
  clearBtn.addEventListener("click", () => {
    typed.cancel();
    filter = { ...defaultFilter, sort: filter.sort, desc: filter.desc };
    writeInputs();
    applied("filter");
    search.focus();
  });
  prev.addEventListener("click", () => {
    if (tokens.length > 1) {
      tokens.pop();
      void load("page");
    }
  });
  next.addEventListener("click", () => {
    if (nextToken) {
      tokens.push(nextToken);
      void load("page");
    }
  });
  addBtn.addEventListener("click", () => openAddDevices(session, addBtn));
  exportBtn.addEventListener("click", () => openExport(filter, exportBtn, (msg) => replace(pageStatus, notice("ok", msg))));

  function drawSortHeaders(): void {
    const eff = filter.sort === DeviceSort.UNSPECIFIED ? DeviceSort.HOSTNAME : filter.sort;
    columns.forEach((col, i) => {
      const th = ths[i]!;
      const on = col.sort === eff;
      th.setAttribute("aria-sort", on ? (filter.desc ? "descending" : "ascending") : "none");
      th.classList.toggle("sorted", on);
      const ind = th.querySelector(".sort-ind")!;
      setText(ind, on ? (filter.desc ? "▼" : "▲") : "");
    });
  }

  function stateRow(...children: Child[]): HTMLTableRowElement {
    return h("tr", { class: "state-row" }, h("td", { colspan: columns.length }, h("div", { class: "state" }, ...children)));
  }

  // The online/offline split, shown when the filter does not fix the state.
  function drawOnline(): void {
    if (onlineTotal === undefined || filter.online !== "all") {
      replace(onlineCount);
      return;
    }
    const off = total > onlineTotal ? total - onlineTotal : 0n;
    replace(onlineCount, " · ", plural(onlineTotal, "online", "online"), " · ", plural(off, "offline", "offline"));
  }

  function drawCounts(): void {
    setText(totalEl, total.toString());
    totalEl.dataset["total"] = total.toString();
    setText(totalWord, total === 1n ? " device" : " devices");
    const a = shown === 0 ? 0 : (tokens.length - 1) * pageSize + 1;
    const b = shown === 0 ? 0 : a + shown - 1;
    setText(showing, shown === 0 ? "" : `Showing ${fmtCount(a)}–${fmtCount(b)} of ${fmtCount(total > BigInt(b) ? total : BigInt(b))}`);
    prev.disabled = tokens.length <= 1;
    next.disabled = nextToken === "";
    pager.hidden = shown === 0 && tokens.length <= 1;
    drawOnline();
  }

  // Once devices that pin the organisation's key show up, a technician
  // whose browser cannot sign is told so before a request is refused.
  let signingChecked = false;
  function checkSigning(devices: readonly Device[]): void {
    if (signingChecked || !devices.some((d) => d.endpointTrust?.orgFingerprint)) return;
    signingChecked = true;
    signingState(session.me.name, life.signal).then((st) => {
      if (life.signal.aborted || st.kind === "certified" || st.kind === "unsupported") return;
      const what = st.kind === "none" ? "This browser has no signing key for you"
        : st.kind === "waiting" || st.kind === "unregistered" ? "Your signing key in this browser is not certified yet"
          : st.kind === "expired" ? "Your signing certificate has expired" : st.kind === "revoked" ? "Your signing certificate is revoked" : "Your signing certificate cannot be used";
      replace(signingSlot, notice("warn", h("span", { data: { testid: "signing-banner", state: st.kind } },
        "Some devices run commands, actions and remote sessions only when a certified technician signs them. ", what, ": ",
        h("a", { href: "#/profile" }, "set it up on your profile"), ".")));
    }, () => {});
  }

  function render(resp: ListDevicesResponse, reason: string): void {
    checkSigning(resp.devices);
    rows.clear();
    total = resp.total;
    nextToken = resp.nextPageToken;
    shown = resp.devices.length;
    const frag: Node[] = [];
    for (const d of resp.devices) {
      const r = makeRow(d);
      rows.set(d.id, r);
      knownOnline.set(d.id, d.online);
      frag.push(r.tr);
    }
    if (shown === 0) {
      if (tokens.length > 1) {
        frag.push(stateRow(h("p", null, "No more devices on this page: the list changed."),
          h("button", { type: "button", class: "btn", on: { click: () => { tokens = [""]; void load("page"); } } }, "Go to the first page")));
      } else if (isFiltered(filter)) {
        frag.push(stateRow(
          h("p", { class: "state-title" }, "No devices match these filters."),
          h("p", null, "Check the spelling, or widen the search."),
          h("button", { type: "button", class: "btn", on: { click: () => clearBtn.click() } }, "Clear filters"),
        ));
      } else {
        frag.push(stateRow(
          h("p", { class: "state-title" }, "No devices yet — add one with ",
            h("button", { type: "button", class: "link", on: { click: () => addBtn.click() } }, "Add devices"), "."),
          h("p", null, "It shows the agent packages this relay serves and the command that installs one with an enrollment token ",
            "(an admin creates it there or with ", code("deskside token create"), "). ",
            "The device appears here as soon as its agent connects."),
        ));
      }
    }
    tbody.replaceChildren(...frag);
    table.classList.remove("is-loading");
    table.removeAttribute("aria-busy");
    drawSortHeaders();
    drawCounts();
    counters.renders++;
    if (!firstRenderMarked && shown > 0) {
      firstRenderMarked = true;
      performance.mark("fleet:first-render");
    }
    if (reason === "filter") performance.mark("fleet:filter-applied");
  }

  async function load(reason: "initial" | "filter" | "page" | "resync" | "retry"): Promise<void> {
    const my = ++seq;
    listAbort?.abort();
    listAbort = new AbortController();
    const signal = AbortSignal.any([life.signal, listAbort.signal]);
    drawSortHeaders();
    if (!loaded) {
      tbody.replaceChildren(stateRow(h("p", { class: "loading" }, "Loading devices…")));
    } else if (reason !== "resync") {
      table.classList.add("is-loading");
      table.setAttribute("aria-busy", "true");
    }
    try {
      const req = { ...listRequest(filter), pageSize, pageToken: tokens[tokens.length - 1] ?? "" };
      void refreshCounts(signal);
      if (!loaded) performance.mark("fleet:list");
      const resp = await client.listDevices(req, { signal });
      if (my !== seq) return;
      if (!loaded) performance.mark("fleet:listed");
      loaded = true;
      render(resp, reason);
      if (reason === "page") table.querySelector<HTMLElement>("tbody a")?.focus({ preventScroll: true });
      if (!watching) startWatch();
    } catch (err) {
      if (my !== seq || isCanceled(err) || life.signal.aborted) return;
      checkSession(err);
      table.classList.remove("is-loading");
      table.removeAttribute("aria-busy");
      if (reason === "resync") return; // the rows shown are still the best we have
      rows.clear();
      shown = 0;
      drawCounts();
      const retry = h("button", { type: "button", class: "btn btn-primary" }, "Try again");
      retry.addEventListener("click", () => void load("retry"));
      tbody.replaceChildren(stateRow(notice("error", "Could not load devices. ", explain(err)), retry));
      counters.renders++;
    }
  }

  // refreshCounts updates the online count (and, standing alone, the total).
  let countSeq = 0;
  async function refreshCounts(signal: AbortSignal, withTotal = false): Promise<void> {
    const my = ++countSeq;
    const base = listRequest(filter);
    try {
      const [all, online] = await Promise.all([
        withTotal ? client.listDevices({ ...base, pageSize: 1 }, { signal }) : Promise.resolve(undefined),
        filter.online === "all" ? client.listDevices({ ...base, online: true, pageSize: 1 }, { signal }) : Promise.resolve(undefined),
      ]);
      if (my !== countSeq) return;
      if (all) {
        total = all.total;
        drawCounts();
      }
      onlineTotal = online?.total;
      drawOnline();
    } catch (err) {
      if (!isCanceled(err)) checkSession(err);
    }
  }

  // Counts follow live changes at most every 2 s.
  let countTimer: ReturnType<typeof setTimeout> | undefined;
  let countDue = 0;
  function countsSoon(): void {
    if (countTimer !== undefined) return;
    const wait = Math.max(0, countDue - Date.now());
    countTimer = setTimeout(() => {
      countTimer = undefined;
      countDue = Date.now() + 2000;
      // A short page may gain a row (a new device): reload it instead.
      if (shown < pageSize && nextToken === "") void load("resync");
      else void refreshCounts(life.signal, true);
    }, wait);
  }

  function startWatch(): void {
    watching = true;
    watchDevices(life.signal, {
      onDevice(d) {
        // Counted for the live-update benchmarks (console/webtest).
        counters.updates++;
        counters.last = d.id;
        counters.lastAt = performance.now();
        const r = rows.get(d.id);
        const was = knownOnline.get(d.id);
        knownOnline.set(d.id, d.online);
        if (r) r.update(d);
        // A device seen for the first time, or one that went on- or
        // offline, changes the counts (or belongs on this page).
        if (was === undefined || was !== d.online) countsSoon();
      },
      onState(state: LiveState, detail?: string) {
        liveEl.className = `live live-${state}`;
        setText(liveEl, state === "live" ? "Live" : state === "stopped" ? "Not live" : state === "connecting" ? "Connecting…" : "Reconnecting…");
        liveEl.title = detail ?? (state === "live" ? "Changes appear as they happen" : "");
      },
      onResync() {
        void load("resync");
      },
    });
  }

  drawSortHeaders();
  drawCounts();
  void load("initial");

  return {
    el,
    title: "Fleet",
    dispose() {
      life.abort();
      typed.cancel();
      if (countTimer !== undefined) clearTimeout(countTimer);
    },
  };
}
