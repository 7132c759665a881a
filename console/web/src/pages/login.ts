// The sign-in page. Login sets the session cookie (HttpOnly, so this code
// never sees it); the response's token is empty for browsers and ignored.

import { client, Code, ConnectError, explain } from "../api";
import { h, replace, uid } from "../dom";
import type { Technician } from "../gen/deskside/v1/console_pb";
import { tsDate } from "../format";
import { notice } from "../page";

/**
 * loginPage renders the form; onSignedIn gets the technician once the relay
 * accepted the credentials (and the password, when it must be changed). reason, when set, says why the session ended.
 */
export function loginPage(reason: string, onSignedIn: (me: Technician, expiresAt: Date | undefined, password: string) => void): HTMLElement {
  const nameID = uid("login-name"), passID = uid("login-password"), totpID = uid("login-totp"), errID = uid("login-error");
  const name = h("input", {
    id: nameID, name: "username", type: "text", autocomplete: "username", required: true, autocapitalize: "none",
    spellcheck: "false", maxlength: 64, data: { testid: "login-name" },
  });
  const password = h("input", {
    id: passID, name: "password", type: "password", autocomplete: "current-password", required: true,
    data: { testid: "login-password" },
  });
  const totp = h("input", {
    id: totpID, name: "totp", type: "text", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}",
    maxlength: 6, "aria-describedby": totpID + "-hint", data: { testid: "login-totp" },
  });
  // Always offered: the relay's answer never says whether an account
  // needs a code (that would confirm the password).
  const totpRow = h("div", { class: "form-row" },
    h("label", { for: totpID }, "Authenticator code (if you use one)"),
    totp,
    h("p", { id: totpID + "-hint", class: "hint" }, "The 6-digit code from your authenticator app, when two-factor sign-in is on."),
  );
  const error = h("p", { id: errID, class: "form-error", role: "alert", hidden: true, data: { testid: "login-error" } });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block", data: { testid: "login-submit" } }, "Sign in");
  const info = reason ? notice("info", reason) : null;

  const showError = (msg: string) => {
    replace(error, msg);
    error.hidden = msg === "";
    for (const el of [name, password]) {
      if (msg) el.setAttribute("aria-describedby", errID);
      else el.removeAttribute("aria-describedby");
    }
  };

  const form = h("form", { class: "login-form", novalidate: true, "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in"),
    h("p", { class: "muted" }, "Deskside technician console"),
    info,
    h("div", { class: "form-row" }, h("label", { for: nameID }, "Name"), name),
    h("div", { class: "form-row" }, h("label", { for: passID }, "Password"), password),
    totpRow,
    error,
    submit,
  );

  let busy = false;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (busy) return;
    if (!name.value.trim() || !password.value) {
      showError("Enter your name and password.");
      (name.value.trim() ? password : name).focus();
      return;
    }
    const code = totp.value.replace(/\s+/g, "");
    if (code !== "" && !/^[0-9]{6}$/.test(code)) {
      showError("Enter the 6-digit code from your authenticator app.");
      totp.focus();
      return;
    }
    busy = true;
    submit.disabled = true;
    replace(submit, "Signing in…");
    form.setAttribute("aria-busy", "true");
    try {
      const pw = password.value;
      const resp = await client.login({ name: name.value.trim(), password: pw, totpCode: code });
      password.value = "";
      if (!resp.technician) throw new Error("the relay answered without a technician");
      // The password goes on only to the password change an admin's
      // password leads to; nothing keeps it.
      onSignedIn(resp.technician, tsDate(resp.expiresAt), resp.technician.mustChangePassword ? pw : "");
      return;
    } catch (err) {
      const ce = ConnectError.from(err);
      const msg = ce.rawMessage;
      if (ce.code === Code.Unauthenticated) {
        showError(code === ""
          ? "Wrong name or password, the account needs an authenticator code, or it is locked after 5 wrong attempts (15 minutes, or an admin unlocks it)."
          : "Wrong name, password or authenticator code, or the account is locked after 5 wrong attempts (15 minutes, or an admin unlocks it).");
        totp.value = "";
        password.select();
        password.focus();
      } else if (ce.code === Code.PermissionDenied || ce.code === Code.ResourceExhausted) {
        // Lockout and rate limits: the relay's sentence, verbatim.
        showError(msg);
      } else {
        showError(explain(err));
      }
    } finally {
      busy = false;
      submit.disabled = false;
      replace(submit, "Sign in");
      form.removeAttribute("aria-busy");
    }
  });

  const page = h("main", { class: "login-page", id: "main" },
    h("div", { class: "login-brand" }, h("span", { class: "brand-mark", "aria-hidden": "true" }), "Deskside"),
    form,
  );
  queueMicrotask(() => name.focus());
  return page;
}
