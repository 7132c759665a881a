// The change-password form: the current password (unless the caller
// already has it: the sign-in page right after an admin set it), the new
// one twice. The relay checks the rules (12 characters or more, not the
// name, not a common password) and ends the technician's other sessions.

import { explain, techClient } from "../api";
import { h, replace, uid } from "../dom";
import { notice } from "../page";

export interface PasswordForm {
  el: HTMLFormElement;
  focus(): void;
}

/**
 * passwordForm builds the form. current, when given, is the current
 * password (no field for it); done gets how many other sessions ended.
 */
export function passwordForm(opts: { current?: () => string; submitLabel: string; signal?: AbortSignal; done: (ended: number) => void }): PasswordForm {
  const row = (label: string, testid: string, autocomplete: string) => {
    const id = uid(testid);
    const input = h("input", { id, type: "password", autocomplete, required: true, data: { testid } });
    return { input, el: h("div", { class: "form-row" }, h("label", { for: id }, label), input) };
  };
  const cur = opts.current ? undefined : row("Current password", "pw-current", "current-password");
  const next = row("New password", "pw-new", "new-password");
  const again = row("New password again", "pw-again", "new-password");
  next.input.setAttribute("minlength", "12");
  const err = h("div", { "aria-live": "polite", data: { testid: "pw-error" } });
  const submit = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "pw-submit" } }, opts.submitLabel);
  const form = h("form", { class: "narrow", novalidate: true },
    cur?.el ?? null, next.el,
    h("p", { class: "hint" }, "At least 12 characters, not your name and not a common password. A few words make a good one."),
    again.el, err, h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const current = opts.current ? opts.current() : cur!.input.value;
    if (!current) {
      replace(err, notice("error", "Enter your current password."));
      cur?.input.focus();
      return;
    }
    if (next.input.value.length < 12) {
      replace(err, notice("error", "The new password needs at least 12 characters."));
      next.input.focus();
      return;
    }
    if (next.input.value !== again.input.value) {
      replace(err, notice("error", "The two new passwords differ. Type the new password twice."));
      again.input.select();
      return;
    }
    submit.disabled = true;
    try {
      const r = await techClient.changePassword({ currentPassword: current, newPassword: next.input.value }, { signal: opts.signal });
      for (const i of [cur?.input, next.input, again.input]) if (i) i.value = "";
      replace(err);
      opts.done(r.sessionsEnded);
    } catch (e2) {
      if (opts.signal?.aborted) return;
      replace(err, notice("error", explain(e2)));
    } finally {
      submit.disabled = false;
    }
  });
  return { el: form, focus: () => (cur ?? next).input.focus() };
}
