// The admin's Releases page (#/releases): the signed agent releases the
// relay holds (docs/adr 33), the rollout and its progress over the
// devices it selects (GetUpdates, polled every few seconds while the page
// is open), the devices that refused, failed or rolled back with the
// agents' reasons (agent data: text nodes only), and a form that starts
// or widens a rollout behind a confirmation naming how many devices will
// be offered the release (StartRollout with dry_run first). Releases are
// uploaded with the CLI only (deskside release upload): a signed build is
// a file on the machine that built it.

import { updateClient, checkSession, explain, isCanceled } from "../api";
import { h, replace, uid } from "../dom";
import { fmtCount, fmtTime, formatBytes, plural, tsDate } from "../format";
import { done, offerText, platformName, progressText, targetText } from "../rollout";
import {
  type GetUpdatesResponse, type Release, type RolloutProgress, type StartRolloutRequest, UpdateState,
} from "../gen/deskside/v1/release_pb";
import { setRelTime } from "../live";
import { code, kvList, notice, type Page } from "../page";

/** RolloutInit is a StartRolloutRequest as the form builds it. */
type RolloutInit = Pick<StartRolloutRequest, "version" | "os" | "arch" | "percent" | "group" | "dryRun">;

/** pollMs is how often the page asks the relay where the rollout stands. */
const pollMs = 3000;

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

const stateLabel: Record<number, string> = {
  [UpdateState.REFUSED]: "Refused",
  [UpdateState.FAILED]: "Failed",
  [UpdateState.ROLLED_BACK]: "Rolled back",
  [UpdateState.DOWNLOADING]: "Downloading",
  [UpdateState.INSTALLED]: "Installed",
};

const uploadSteps = (): HTMLElement => h("div", { class: "release-upload", data: { testid: "release-upload-help" } },
  h("p", null, "Releases are uploaded with the CLI (not from this page), from the machine where the build was signed with the release key agents pin:"),
  h("pre", { class: "cmd" }, code("deskside release sign --key release-key.pem --version vX.Y.Z --os linux --arch amd64 deskside-agent\n" +
    "deskside release upload deskside-agent")),
  h("p", { class: "muted" }, "The upload reads deskside-agent.release beside the executable (or --manifest FILE)."));

export function releasesPage(): Page {
  const life = new AbortController();
  const signal = life.signal;
  const status = h("div", { "aria-live": "polite", data: { testid: "releases-status" } });
  const rolloutBody = h("div", { data: { testid: "rollout" } }, h("p", { class: "muted" }, "Loading…"));
  const formBody = h("div", { data: { testid: "rollout-form-body" } });
  const listBody = h("div", { data: { testid: "releases-list" } }, h("p", { class: "muted" }, "Loading…"));
  const el = h("div", { class: "page page-releases" },
    h("h1", null, "Releases"),
    h("p", { class: "muted" }, "Signed agent builds the relay offers its agents. Agents install only a newer build, for their platform, signed by the release key they pin; one that does not reconnect in time rolls back by itself."),
    status,
    h("section", { class: "card", data: { testid: "rollout-card" } }, h("h2", null, "Rollout"), rolloutBody),
    h("section", { class: "card", data: { testid: "rollout-form-card" } }, h("h2", null, "Start or widen a rollout"), formBody),
    h("section", { class: "card", data: { testid: "releases-card" } }, h("h2", null, "Releases on the relay"), listBody));

  let releases: Release[] = [];
  let updates: GetUpdatesResponse | undefined;
  let formDrawn = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const fail = (e: unknown, where: HTMLElement = status) => {
    if (isCanceled(e) || signal.aborted) return;
    checkSession(e);
    replace(where, notice("error", explain(e)));
  };

  const drawReleases = () => {
    if (releases.length === 0) {
      replace(listBody, notice("info", h("p", null, h("strong", null, "The relay holds no release yet.")), uploadSteps()));
      return;
    }
    const r0 = updates?.rollout;
    replace(listBody,
      h("div", { class: "table-scroll" }, h("table", { class: "grid", "aria-label": "Releases", data: { testid: "releases-table" } },
        h("thead", null, h("tr", null, ...["Version", "Platform", "Size", "SHA-256", "Release key", "Signed", "Uploaded", ""].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", null, ...releases.map((r) => {
          const inRollout = !!r0 && r0.version === r.version && r0.os === r.os && r0.arch === r.arch;
          const sum = hex(r.sha256);
          return h("tr", { data: { testid: "release-row", version: r.version, platform: `${r.os}/${r.arch}` } },
            h("td", null, h("strong", null, r.version)),
            h("td", null, `${r.os}/${r.arch}`),
            h("td", null, formatBytes(r.size)),
            h("td", null, h("code", { title: sum, "aria-label": `SHA-256 ${sum}` }, sum.slice(0, 16) + "…")),
            h("td", null, h("code", { class: "fp", title: r.releaseKeyFingerprint }, r.releaseKeyFingerprint)),
            h("td", null, fmtTime(tsDate(r.issuedAt))),
            h("td", null, r.uploadedAt ? fmtTime(tsDate(r.uploadedAt)) : "–"),
            h("td", null, inRollout ? h("span", { class: "pill pill-accent" }, "in the rollout") : ""));
        })))),
      h("p", { class: "muted small" }, "To add a release: ", code("deskside release upload FILE"), " (CLI only; FILE.release beside it)."));
  };

  const count = (label: string, n: number, testid: string, hint: string, cls: string): HTMLElement =>
    h("div", { class: `rollout-count ${cls}`, data: { testid: "count-" + testid, n: String(n) } },
      h("span", { class: "rollout-n" }, fmtCount(n)), h("span", { class: "rollout-label" }, label), h("span", { class: "muted small" }, hint));

  const bar = (p: RolloutProgress, version: string): HTMLElement => {
    const total = Math.max(p.inScope, 1);
    const seg = (n: number, cls: string) => {
      const s = h("span", { class: "rb-seg " + cls, "aria-hidden": "true" });
      s.style.width = `${((100 * n) / total).toFixed(2)}%`;
      return s;
    };
    const text = progressText(p, version);
    const pc = p.inScope ? Math.floor((100 * done(p)) / p.inScope) : 0;
    return h("div", { class: "rollout-progress" },
      h("div", { class: "rollout-bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(pc), "aria-valuetext": text, "aria-label": "Rollout progress", data: { testid: "rollout-bar" } },
        seg(done(p), "rb-done"), seg(p.downloading, "rb-busy"), seg(p.refused + p.failed + p.rolledBack, "rb-bad")),
      h("p", { class: "rollout-bar-text", data: { testid: "rollout-progress-text" } }, text));
  };

  const drawRollout = () => {
    const u = updates;
    const r = u?.rollout;
    const p = u?.progress;
    if (!u || !r || !r.version || !p) {
      replace(rolloutBody, h("p", { class: "muted", data: { testid: "no-rollout" } },
        releases.length ? "No rollout: agents are not offered any release. Start one below." : "No rollout."));
      return;
    }
    const started = h("time");
    setRelTime(started, tsDate(u.started));
    const selected = p.selected.reduce((n, c) => n + c.devices, 0);
    const failures = p.failures;
    replace(rolloutBody,
      kvList([
        ["Release", h("span", null, h("strong", { data: { testid: "rollout-version" } }, r.version), ` for ${r.os}/${r.arch}`)],
        ["Offered to", h("span", { data: { testid: "rollout-target" } }, targetText(r))],
        ["Started", h("span", null, fmtTime(tsDate(u.started)), " (", started, ")", u.startedBy ? ` by ${u.startedBy}` : "")],
        ["Selected", h("span", { data: { testid: "rollout-selected" } }, `${plural(selected, "device")}`,
          p.selected.length ? ": " + p.selected.map((c) => `${platformName(c.os, c.arch)} ${fmtCount(c.devices)}`).join(", ") : "")],
      ]),
      bar(p, r.version),
      h("div", { class: "rollout-counts", data: { testid: "rollout-counts" } },
        count("installed", p.installed, "installed", "swapped in, restarted", "c-done"),
        count("already current", p.current, "current", "ran it or newer before", "c-done"),
        count("downloading", p.downloading, "downloading", "streaming over the link", "c-busy"),
        count("offered", p.offered, "offered", "connected, no answer yet", "c-wait"),
        count("waiting", p.waiting, "waiting", "offered when they connect", "c-wait"),
        count("refused", p.refused, "refused", "pin, key, version or platform", "c-bad"),
        count("failed", p.failed, "failed", "download or swap failed", "c-bad"),
        count("rolled back", p.rolledBack, "rolled-back", "did not reconnect in time", "c-bad")),
      h("h3", null, "Devices that refused, failed or rolled back"),
      failures.length === 0
        ? h("p", { class: "muted", data: { testid: "no-failures" } }, "None.")
        : h("div", { class: "table-scroll" }, h("table", { class: "grid compact", "aria-label": "Devices that refused, failed or rolled back", data: { testid: "failures-table" } },
          h("thead", null, h("tr", null, ...["Device", "State", "Reason (from the agent)", "When"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", null, ...failures.map((f) => {
            const when = h("time");
            setRelTime(when, tsDate(f.at));
            return h("tr", { data: { testid: "failure-row", deviceId: f.deviceId } },
              h("td", null, h("a", { href: "#/devices/" + encodeURIComponent(f.deviceId), class: "clip" }, f.hostname || f.deviceId)),
              h("td", null, stateLabel[f.status?.state ?? 0] ?? "–"),
              h("td", null, h("span", { class: "wrap reason" }, f.status?.reason || "–")),
              h("td", null, when));
          })))),
      failures.length >= 200 ? h("p", { class: "muted small" }, "The 200 most recent are shown; deskside release status lists every device.") : null);
  };

  const drawForm = () => {
    if (releases.length === 0) {
      replace(formBody, h("p", { class: "muted" }, "Upload a release first (above, with the CLI)."));
      formDrawn = false;
      return;
    }
    if (formDrawn) return; // keep what the admin is typing across polls
    formDrawn = true;
    const cur = updates?.rollout;
    const relID = uid("rel-version");
    const sel = h("select", { id: relID, data: { testid: "rollout-release" } },
      ...releases.map((r, i) => h("option", {
        value: String(i),
        selected: !!cur && cur.version === r.version && cur.os === r.os && cur.arch === r.arch,
      }, `${r.version} · ${r.os}/${r.arch}`)));
    const name = uid("rel-target");
    const radio = (value: string, testid: string, checked: boolean) =>
      h("input", { type: "radio", name, value, checked, data: { testid } });
    const rPct = radio("percent", "rollout-target-percent", !cur?.group && (cur?.percent ?? 10) < 100);
    const rGrp = radio("group", "rollout-target-group", !!cur?.group);
    const rAll = radio("all", "rollout-target-all", !cur?.group && (cur?.percent ?? 0) >= 100);
    const pct = h("input", { type: "number", min: "1", max: "100", step: "1", value: String(cur && !cur.group && cur.percent < 100 ? cur.percent : 10), class: "num-input", "aria-label": "Percentage of the devices", data: { testid: "rollout-percent" } });
    const grp = h("input", { type: "text", "aria-label": "Device group", value: cur?.group ?? "", autocomplete: "off", maxlength: 128, placeholder: "pilot", data: { testid: "rollout-group" } });
    const review = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "rollout-review" } }, "Review…");
    const confirmBox = h("div", { "aria-live": "polite", data: { testid: "rollout-confirm-box" } });
    const form = h("form", { class: "rollout-form", novalidate: true },
      h("div", { class: "form-row" }, h("label", { for: relID }, "Release"), sel),
      h("fieldset", { class: "rollout-targets" }, h("legend", null, "Offer it to"),
        h("div", { class: "target-row" }, h("label", null, rPct, " A percentage of the devices: "), pct, h("span", { class: "muted", "aria-hidden": "true" }, " %"),
          h("p", { class: "muted small" }, "Each device has a fixed place in the order, so the same devices stay chosen as the percentage grows: the 10 % are inside the 50 %.")),
        h("div", { class: "target-row" }, h("label", null, rGrp, " The devices of a group: "), grp),
        h("div", { class: "target-row" }, h("label", null, rAll, " All devices"))),
      h("div", { class: "form-actions" }, review),
      confirmBox);
    const request = (): RolloutInit | string => {
      const r = releases[Number(sel.value)];
      if (!r) return "Pick a release.";
      const base = { version: r.version, os: r.os, arch: r.arch, percent: 0, group: "", dryRun: true };
      if (rAll.checked) return { ...base, percent: 100 };
      if (rGrp.checked) {
        const g = grp.value.trim();
        if (!g) return "Name the device group (devices join one with deskside devices group ID NAME).";
        return { ...base, group: g };
      }
      const n = Number(pct.value);
      if (!Number.isInteger(n) || n < 1 || n > 100) return "The percentage is a whole number from 1 to 100.";
      return { ...base, percent: n };
    };
    for (const i of [pct, grp, sel, rPct, rGrp, rAll]) i.addEventListener("input", () => replace(confirmBox));
    pct.addEventListener("focus", () => { rPct.checked = true; });
    grp.addEventListener("focus", () => { rGrp.checked = true; });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const req = request();
      if (typeof req === "string") {
        replace(confirmBox, notice("error", req));
        return;
      }
      review.disabled = true;
      try {
        const dry = await updateClient.startRollout(req, { signal });
        const p = dry.scope;
        const cur = updates?.rollout;
        const widen = !!cur && cur.version === req.version && cur.os === req.os && cur.arch === req.arch;
        const go = h("button", { type: "button", class: "btn btn-primary", data: { testid: "rollout-confirm" } }, widen ? "Change the rollout" : "Start the rollout");
        const cancel = h("button", { type: "button", class: "btn btn-quiet", data: { testid: "rollout-cancel" } }, "Cancel");
        cancel.addEventListener("click", () => { replace(confirmBox); review.focus(); });
        go.addEventListener("click", async () => {
          go.disabled = cancel.disabled = true;
          try {
            await updateClient.startRollout({ ...req, dryRun: false }, { signal });
            replace(confirmBox);
            replace(status, notice("ok", `Rollout of ${req.version} to ${targetText(req)} started. Connected agents are offered it now.`));
            await poll();
          } catch (err) {
            go.disabled = cancel.disabled = false;
            fail(err, confirmBox);
          }
        });
        const offered = p ? p.offered + p.waiting : 0;
        replace(confirmBox, notice(offered ? "warn" : "info",
          h("p", { data: { testid: "rollout-confirm-text", offer: String(offered) } },
            h("strong", null, `${widen ? "Change the rollout to" : "Roll out"} ${req.version} (${req.os}/${req.arch}) to ${targetText(req)}?`), " ",
            p ? offerText(p, req.version, req.os, req.arch) : ""),
          widen && cur ? h("p", { class: "small" }, `Now: ${targetText(cur)}. A device already offered keeps its state.`) : null,
          h("div", { class: "form-actions" }, go, cancel)));
        go.focus();
      } catch (err) {
        fail(err, confirmBox);
      } finally {
        review.disabled = false;
      }
    });
    replace(formBody, form);
  };

  const poll = async (): Promise<void> => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    try {
      updates = await updateClient.getUpdates({ withoutDevices: true }, { signal });
      drawRollout();
      drawReleases();
    } catch (err) {
      fail(err, rolloutBody);
    }
    if (!signal.aborted) timer = setTimeout(() => void poll(), pollMs);
  };

  void (async () => {
    try {
      const [rels, u] = await Promise.all([updateClient.listReleases({}, { signal }), updateClient.getUpdates({ withoutDevices: true }, { signal })]);
      releases = rels.releases;
      updates = u;
      drawReleases();
      drawRollout();
      drawForm();
    } catch (err) {
      fail(err);
      for (const c of el.querySelectorAll("section.card")) c.remove();
      return;
    }
    timer = setTimeout(() => void poll(), pollMs);
  })();
  return {
    el, title: "Releases",
    dispose: () => {
      life.abort();
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
