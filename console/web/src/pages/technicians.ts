// The admin's technicians card (on the profile page): unlock an account
// locked after wrong sign-ins, and reset a technician's password to a
// generated one shown once. Both are audited by the relay.

import { client, checkSession, explain } from "../api";
import { h, replace, uid } from "../dom";
import { card, notice } from "../page";

export function techniciansCard(signal: AbortSignal): HTMLElement {
  const nameID = uid("tech-name");
  const name = h("input", {
    id: nameID, type: "text", autocomplete: "off", autocapitalize: "none", spellcheck: "false", maxlength: 64,
    required: true, data: { testid: "tech-name" },
  });
  const unlock = h("button", { type: "button", class: "btn", data: { testid: "tech-unlock" } }, "Unlock");
  const reset = h("button", { type: "button", class: "btn btn-danger", data: { testid: "tech-reset" } }, "Reset password");
  const out = h("div", { "aria-live": "polite", data: { testid: "tech-result" } });

  const who = (): string | undefined => {
    const n = name.value.trim();
    if (!n) {
      replace(out, notice("error", "Enter the technician's name."));
      name.focus();
      return undefined;
    }
    return n;
  };
  const run = async (btn: HTMLButtonElement, fn: () => Promise<HTMLElement>) => {
    btn.disabled = true;
    try {
      replace(out, await fn());
    } catch (e) {
      if (signal.aborted) return;
      checkSession(e);
      replace(out, notice("error", explain(e)));
    } finally {
      btn.disabled = false;
    }
  };

  unlock.addEventListener("click", () => {
    const n = who();
    if (!n) return;
    void run(unlock, async () => {
      const r = await client.unlockTechnician({ name: n }, { signal });
      return notice("ok", r.wasLocked ? `Unlocked ${n}: they can sign in now.` : `${n} was not locked; ${r.failures} wrong sign-ins cleared.`);
    });
  });
  reset.addEventListener("click", () => {
    const n = who();
    if (!n) return;
    if (!confirm(`Reset the password of ${n}? Their sessions end and the old password stops working.`)) return;
    void run(reset, async () => {
      const r = await client.resetTechnicianPassword({ name: n }, { signal });
      return notice("ok",
        h("p", null, `New password for ${n} (shown once; hand it over by another channel):`),
        h("p", null, h("code", { class: "secret", data: { testid: "tech-password" } }, r.password)),
        h("p", null, `The account is unlocked; ${r.sessionsEnded} of their sessions ended. Their authenticator stays as it is.`));
    });
  });

  return card("Technicians",
    h("div", { class: "narrow" },
      h("p", null, "After 5 wrong sign-ins an account is locked for 15 minutes. Unlock it, or give a technician a new password."),
      h("div", { class: "form-row" }, h("label", { for: nameID }, "Technician name"), name),
      h("div", { class: "form-actions" }, unlock, reset),
      out));
}
