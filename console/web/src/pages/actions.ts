// Remediation actions on the device page: kill a process, restart a
// service, flush the DNS cache, reboot (after a confirmation, with a delay
// and a message for the user). The relay audits each one; its answer and
// the agent's message are shown as text.

import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { checkSession, client, explain, isCanceled } from "../api";
import { h, replace, uid } from "../dom";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { RunActionSchema } from "../gen/deskside/v1/diag_pb";
import { notice, signingHint } from "../page";
import { envelopeHeaders } from "../signing";
import { fmtDuration } from "../term";

type Kind = "kill" | "restart" | "flush-dns" | "reboot";

const kinds: ReadonlyArray<[Kind, string]> = [
  ["kill", "Kill a process"], ["restart", "Restart a service"], ["flush-dns", "Flush the DNS cache"], ["reboot", "Reboot"],
];

const rebootDelays: readonly number[] = [1, 5, 15, 30, 60]; // minutes
const defaultRebootMessage = "Your IT support will restart this computer. Please save your work.";

/** describe says what an action does, for the confirmation and the result. */
function describe(a: MessageInitShape<typeof RunActionSchema>): string {
  const x = a.action;
  switch (x?.case) {
    case "killProcess":
      return `kill process ${x.value.pid}`;
    case "restartService":
      return `restart service ${x.value.name}`;
    case "flushDns":
      return "flush the DNS cache";
    case "reboot":
      return "reboot";
  }
  return "action";
}

/** actionsCard builds the Actions card of device id; name gives the device's name for the confirmation. */
export function actionsCard(id: string, life: AbortSignal, name: () => string): HTMLElement {
  const kindID = uid("action-kind");
  const kind = h("select", { id: kindID, data: { testid: "action-kind" } }, kinds.map(([k, l]) => h("option", { value: k }, l)));
  const pidID = uid("action-pid");
  const pid = h("input", { id: pidID, type: "text", inputmode: "numeric", pattern: "[0-9]*", autocomplete: "off", class: "action-pid", data: { testid: "action-pid" } });
  const svcID = uid("action-service");
  const svc = h("input", { id: svcID, type: "text", autocomplete: "off", spellcheck: "false", maxlength: "128", placeholder: "e.g. cups, Spooler", data: { testid: "action-service" } });
  const delayID = uid("action-reboot-delay");
  const delay = h("select", { id: delayID, data: { testid: "action-reboot-delay" } },
    rebootDelays.map((m) => h("option", { value: String(m), selected: m === 5 }, m === 1 ? "in 1 minute" : `in ${m} minutes`)));
  const msgID = uid("action-reboot-message");
  const msg = h("input", { id: msgID, type: "text", maxlength: "200", value: defaultRebootMessage, data: { testid: "action-reboot-message" } });
  const runBtn = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "action-run" } }, "Run action");
  const result = h("div", { class: "action-result", data: { testid: "action-result" } });

  const fPid = h("div", { class: "filter" }, h("label", { for: pidID }, "Process ID"), pid);
  const fSvc = h("div", { class: "filter action-wide" }, h("label", { for: svcID }, "Service"), svc);
  const fDelay = h("div", { class: "filter action-delay" }, h("label", { for: delayID }, "When"), delay);
  const fMsg = h("div", { class: "filter action-wide" }, h("label", { for: msgID }, "Message to the user"), msg);
  const fFlush = h("p", { class: "muted action-note" }, "Clears the resolver cache (systemd-resolved, dscacheutil or ipconfig /flushdns).");

  const form = h("form", { class: "action-form", novalidate: true },
    h("div", { class: "filter action-kind" }, h("label", { for: kindID }, "Action"), kind),
    fPid, fSvc, fDelay, fMsg, fFlush,
    h("div", { class: "action-submit" }, runBtn),
  );
  const el = h("section", { class: "card", "aria-labelledby": `${kindID}-title` },
    h("div", { class: "card-head" }, h("h2", { id: `${kindID}-title` }, "Actions")),
    form, result);

  const drawFields = () => {
    const k = kind.value as Kind;
    fPid.hidden = k !== "kill";
    fSvc.hidden = k !== "restart";
    fDelay.hidden = fMsg.hidden = k !== "reboot";
    fFlush.hidden = k !== "flush-dns";
    replace(runBtn, k === "reboot" ? "Reboot…" : "Run action");
    runBtn.className = k === "reboot" ? "btn btn-danger" : "btn btn-primary";
  };
  kind.addEventListener("change", () => {
    drawFields();
    replace(result);
  });
  drawFields();

  let running = false;

  async function perform(a: MessageInitShape<typeof RunActionSchema>): Promise<void> {
    running = true;
    runBtn.disabled = true;
    const what = describe(a);
    replace(result, h("p", { class: "loading", role: "status" }, `Asking the agent to ${what}…`));
    const t0 = performance.now();
    try {
      // The action as signed is the action as sent (signed only when this
      // browser has a certified key).
      const action = create(RunActionSchema, a);
      const headers = await envelopeHeaders({ case: "action", value: action }, [id]);
      if (life.aborted) return;
      const resp = await client.runAction({ deviceId: id, action }, { signal: life, headers });
      const r = resp.result;
      const took = fmtDuration(performance.now() - t0);
      replace(result, r?.ok
        ? notice("ok", h("span", { data: { testid: "action-ok", ok: "true" } }, `Done: ${what} (${took}). `), r.message ? h("span", { class: "wrap" }, r.message) : null)
        : notice("error", h("span", { data: { testid: "action-failed", ok: "false" } }, `The agent could not ${what}. `), h("span", { class: "wrap" }, r?.message || "It gave no reason."),
          signingHint(r?.message ?? "")));
    } catch (err) {
      if (isCanceled(err) || life.aborted) return;
      checkSession(err);
      replace(result, notice("error", `Could not ${what}. `, explain(err), signingHint(explain(err))));
    } finally {
      running = false;
      if (!life.aborted) {
        runBtn.disabled = false;
        if (!document.activeElement || document.activeElement === document.body) runBtn.focus();
      }
    }
  }

  function confirmReboot(a: MessageInitShape<typeof RunActionSchema>, minutes: number, message: string): void {
    const titleID = uid("reboot-title");
    const yes = h("button", { type: "submit", class: "btn btn-danger", data: { testid: "action-confirm" } }, "Reboot");
    const no = h("button", { type: "button", class: "btn btn-quiet", data: { testid: "action-confirm-cancel" } }, "Cancel");
    const f = h("form", { class: "dialog-body", method: "dialog" },
      h("h2", { id: titleID }, "Reboot this device?"),
      h("p", null, h("strong", { class: "dialog-host" }, name()), ` restarts in ${minutes === 1 ? "1 minute" : `${minutes} minutes`}. Unsaved work on it may be lost.`),
      message ? h("p", null, "The user sees: ", h("q", { class: "wrap" }, message)) : h("p", { class: "muted" }, "The user sees the agent's default message."),
      h("div", { class: "dialog-actions" }, no, yes),
    );
    const dialog = h("dialog", { class: "dialog dialog-narrow", "aria-labelledby": titleID, data: { testid: "action-confirm-dialog" } }, f);
    let go = false;
    no.addEventListener("click", () => dialog.close());
    f.addEventListener("submit", (e) => {
      e.preventDefault();
      go = true;
      dialog.close();
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      runBtn.focus();
      if (go && !life.aborted) void perform(a);
    });
    life.addEventListener("abort", () => dialog.open && dialog.close(), { once: true });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (running) return;
    const k = kind.value as Kind;
    const bad = (m: string, field: HTMLElement) => {
      replace(result, notice("error", m));
      field.focus();
    };
    switch (k) {
      case "kill": {
        const v = pid.value.trim();
        const n = Number(v);
        if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(n) || n <= 1 || n > 2 ** 31 - 1) return bad("Give the ID of the process to kill (a number greater than 1).", pid);
        void perform({ action: { case: "killProcess", value: { pid: n } } });
        return;
      }
      case "restart": {
        const v = svc.value.trim();
        if (!v) return bad("Give the name of the service to restart.", svc);
        void perform({ action: { case: "restartService", value: { name: v } } });
        return;
      }
      case "flush-dns":
        void perform({ action: { case: "flushDns", value: {} } });
        return;
      case "reboot": {
        const m = Number(delay.value) || 5;
        const text = msg.value.trim();
        confirmReboot({ action: { case: "reboot", value: { delay: durationFromMs(m * 60_000), message: text } } }, m, text);
        return;
      }
    }
  });

  return el;
}
