// The profile's Signing key card: the first run of signed requests in the
// browser. Create a key here (explicitly: a key nobody asked for is a key
// an admin is asked to certify without knowing why), ask an admin to
// certify it (the command to give them, with the fingerprint to compare),
// then see what the certificate allows; expired, revoked or unusable
// certificates say what to do.

import { checkSession, explain } from "../api";
import { h, replace } from "../dom";
import { fmtTime, until } from "../format";
import { kvList, notice } from "../page";
import { createKey, registerKey, removeKey, signingState, type KeyInfo, type SigningState } from "../signing";
import { certifyCommand, tierLabel } from "../signwords";

/** signingCard builds the card for technician; it reads the state at once and on "Check again". */
export function signingCard(technician: string, life: AbortSignal): HTMLElement {
  const body = h("div", { class: "signing-body" }, h("p", { class: "loading", role: "status" }, "Looking for this browser's signing key…"));
  const status = h("div", { class: "signing-status", data: { testid: "signing-status" } });
  const el = h("section", { class: "card signing-card", data: { testid: "signing-card", state: "loading" } },
    h("h2", null, "Signing key"), status, body);

  const btn = (label: string, testid: string, cls = "btn") => h("button", { type: "button", class: cls, data: { testid } }, label);

  /** act runs a step with btn busy, then reads the state again. */
  async function act(b: HTMLButtonElement, busyLabel: string, step: () => Promise<void>, done?: string): Promise<void> {
    const label = b.textContent ?? "";
    b.disabled = true;
    replace(b, busyLabel);
    replace(status);
    try {
      await step();
      if (done) replace(status, notice("ok", done));
    } catch (e) {
      if (life.aborted) return;
      checkSession(e);
      replace(status, notice("error", e instanceof Error && !("code" in e) ? e.message : explain(e)));
      b.disabled = false;
      replace(b, label);
      return;
    }
    await refresh();
  }

  function commandBox(fp: string): HTMLElement {
    const cmd = certifyCommand(technician, fp);
    const codeEl = h("code", { class: "signing-command", data: { testid: "signing-command" } }, cmd);
    const copy = btn("Copy", "signing-copy", "btn btn-small");
    const copied = h("span", { class: "muted", role: "status" });
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(cmd);
        replace(copied, "Copied.");
      } catch {
        // No clipboard permission: select the text for Ctrl+C.
        const r = document.createRange();
        r.selectNodeContents(codeEl);
        getSelection()?.removeAllRanges();
        getSelection()?.addRange(r);
        replace(copied, "Selected: press Ctrl+C (⌘C) to copy.");
      }
    });
    return h("div", { class: "signing-cmd" }, codeEl, h("div", { class: "signing-cmd-actions" }, copy, copied));
  }

  function keyRows(k: KeyInfo): Array<[string, HTMLElement | string]> {
    return [
      ["This browser's key", h("code", { class: "signing-fp", data: { testid: "signing-fingerprint" } }, k.fingerprint)],
      ["Created", `${fmtTime(k.created)} (${k.label})`],
    ];
  }

  function removeControls(k: KeyInfo): HTMLElement {
    const remove = btn("Remove this key…", "signing-remove", "btn btn-quiet");
    const slot = h("div", { class: "signing-remove" }, remove);
    remove.addEventListener("click", () => {
      const yes = btn("Remove key", "signing-remove-confirm", "btn btn-danger");
      const no = btn("Cancel", "signing-remove-cancel", "btn btn-quiet");
      no.addEventListener("click", () => replace(slot, remove));
      yes.addEventListener("click", () => void act(yes, "Removing…", () => removeKey(technician, life), "The key is removed from this browser and the relay."));
      replace(slot, h("p", null, `This browser then cannot sign your requests; key ${k.fingerprint.slice(0, 8)}… cannot be recovered. `), no, " ", yes);
      no.focus();
    });
    return slot;
  }

  function checkAgain(): HTMLButtonElement {
    const b = btn("Check again", "signing-refresh");
    b.addEventListener("click", () => void act(b, "Checking…", async () => {}));
    return b;
  }

  function draw(st: SigningState): void {
    el.dataset["state"] = st.kind;
    const relayNote = "error" in st && st.error
      ? notice("warn", `Could not ask the relay (${st.error}); this is what this browser last knew.`) : null;
    switch (st.kind) {
      case "unsupported":
        replace(body, notice("warn", `This browser cannot keep a signing key: ${st.reason}. Use an up-to-date Chrome, Edge, Firefox or Safari in a normal window, or sign with the CLI (deskside technician keygen).`));
        return;
      case "none": {
        const create = btn("Create signing key", "signing-create", "btn btn-primary");
        create.addEventListener("click", () => void act(create, "Creating…", () => createKey(technician, life)));
        replace(body,
          h("p", null, "Devices that pin your organisation's key run commands, actions and remote sessions only when a technician with a certified key signs them. This browser has no signing key for you yet."),
          h("ol", { class: "steps" },
            h("li", null, "Create a key in this browser. Its private half stays in this browser and cannot be copied out, not even by you."),
            h("li", null, "Ask an admin to certify it (the next step shows the command to give them)."),
            h("li", null, "From then on this browser signs your requests by itself.")),
          h("div", { class: "form-actions" }, create));
        return;
      }
      case "unregistered": {
        const again = btn("Register again", "signing-register", "btn btn-primary");
        again.addEventListener("click", () => void act(again, "Registering…", () => registerKey(technician, life), "Registered. Now ask an admin to certify it."));
        replace(body, relayNote,
          notice("warn", "The relay does not list this browser's key: registering it failed, or an admin removed it. Register it again, or remove it and create a new one."),
          kvList(keyRows(st.key)), h("div", { class: "form-actions" }, again, removeControls(st.key)));
        return;
      }
      case "waiting":
        replace(body, relayNote,
          notice("info", "Waiting for an admin to certify this browser's key. Until then your requests go unsigned, and devices that pin the organisation's key refuse them."),
          h("p", null, "Ask an admin to run:"), commandBox(st.key.fingerprint),
          h("p", { class: "hint" }, "The admin checks that the fingerprint is the one you gave them, and chooses your tier (--role) and how long the certificate lasts (--expires). Then press Check again."),
          kvList(keyRows(st.key)), h("div", { class: "form-actions" }, checkAgain(), removeControls(st.key)));
        return;
      case "certified":
      case "expired":
      case "revoked": {
        const b = st.cert.body;
        const head = st.kind === "certified"
          ? notice("ok", "Certified: this browser signs your commands, actions and remote sessions.")
          : st.kind === "expired"
            ? notice("warn", `Your certificate expired ${st.cert.notAfter ? "on " + fmtTime(st.cert.notAfter) : ""}. Devices that pin the organisation's key refuse your requests until an admin certifies this key again:`)
            : notice("error", "The organisation revoked your certificate: devices that pin its key refuse your requests. Talk to an admin; once it is settled they certify a new key (remove this one, create another, and give them its fingerprint).");
        replace(body, relayNote, head,
          st.kind === "expired" ? commandBox(st.key.fingerprint) : null,
          kvList([
            ["Tier", h("span", { data: { testid: "signing-tier" } }, tierLabel(b.tier))],
            ["Device groups", b.groups.length ? b.groups.join(", ") : "all"],
            ["Valid until", h("span", { data: { testid: "signing-expiry" } }, st.cert.notAfter ? `${fmtTime(st.cert.notAfter)} (${until(Date.now(), st.cert.notAfter)})` : "no expiry")],
            ["Organisation key", h("code", { class: "signing-fp", data: { testid: "signing-org" }, title: "Compare with the fingerprint your admin published (deskside org init printed it)" }, st.cert.orgFingerprint)],
            ...keyRows(st.key),
          ]),
          h("div", { class: "form-actions" }, st.kind !== "certified" ? checkAgain() : null, removeControls(st.key)));
        return;
      }
      case "invalid":
        replace(body, relayNote,
          notice("error", `The relay holds a certificate for you that this browser cannot use: ${st.reason}. Requests stay unsigned. Ask an admin to certify this key again:`),
          commandBox(st.key.fingerprint), kvList(keyRows(st.key)), h("div", { class: "form-actions" }, checkAgain(), removeControls(st.key)));
        return;
    }
  }

  async function refresh(): Promise<void> {
    try {
      const st = await signingState(technician, life);
      if (!life.aborted) draw(st);
    } catch (e) {
      if (life.aborted) return;
      checkSession(e);
      replace(body, notice("error", "Could not read the signing key: ", explain(e)));
    }
  }
  void refresh();
  return el;
}
