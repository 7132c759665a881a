// The profile page: who is signed in, the password change, two-factor
// sign-in (TOTP) set-up and removal, and this browser's signing key
// (signingcard.ts).

import { client, explain, checkSession } from "../api";
import { h, replace, uid } from "../dom";
import { fmtTime, roleLabel, tsDate, until } from "../format";
import { Role } from "../gen/deskside/v1/console_pb";
import { card, kvList, notice, type Page, type Session } from "../page";
import { signingCard } from "./signingcard";
import { passwordForm } from "./password";

/** codeInput is a 6-digit authenticator code field with its label. */
function codeInput(testid: string): { input: HTMLInputElement; row: HTMLElement } {
  const id = uid(testid);
  const input = h("input", {
    id, type: "text", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: 6,
    required: true, class: "code-input", data: { testid },
  });
  return { input, row: h("div", { class: "form-row" }, h("label", { for: id }, "Code from your authenticator app"), input) };
}

const validCode = (s: string) => /^[0-9]{6}$/.test(s.replace(/\s+/g, ""));

/** groups splits a secret into groups of four for reading aloud or typing. */
function groups(secret: string): string {
  return secret.replace(/(.{4})/g, "$1 ").trim();
}

export function profilePage(session: Session): Page {
  const life = new AbortController();
  let qrURL: string | undefined;
  const dropQR = () => {
    if (qrURL) URL.revokeObjectURL(qrURL);
    qrURL = undefined;
  };
  const who = h("div");
  const totpSlot = h("div");
  const status = h("div", { class: "action-status" });

  function drawWho(): void {
    const me = session.me;
    replace(who, kvList([
      ["Name", me.name],
      ["Role", roleLabel(Role[me.role])],
      ["Two-factor sign-in", me.totpEnabled ? "On" : "Off"],
      ["Session", session.expiresAt ? `expires ${until(Date.now(), session.expiresAt)} (${fmtTime(session.expiresAt)})` : ""],
    ]));
  }

  function busy(btn: HTMLButtonElement, label: string | false): void {
    btn.disabled = label !== false;
    if (label !== false) {
      btn.dataset["label"] = btn.textContent ?? "";
      replace(btn, label);
    } else replace(btn, btn.dataset["label"] ?? "");
  }

  function setTotp(on: boolean): void {
    session.update({ ...session.me, totpEnabled: on });
    drawWho();
    drawTotp();
  }

  function drawTotp(): void {
    dropQR();
    if (session.me.totpEnabled) {
      const { input, row } = codeInput("totp-disable-code");
      const btn = h("button", { type: "submit", class: "btn btn-danger", data: { testid: "totp-disable" } }, "Turn off two-factor sign-in");
      const err = h("div");
      const form = h("form", { class: "narrow" }, h("p", null, "Two-factor sign-in is on: signing in asks for a code from your authenticator app."),
        h("p", null, "To turn it off, enter a current code."), row, err, btn);
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        if (!validCode(input.value)) {
          replace(err, notice("error", "Enter the 6-digit code from your authenticator app."));
          input.focus();
          return;
        }
        busy(btn, "Turning off…");
        try {
          await client.disableTotp({ code: input.value.replace(/\s+/g, "") }, { signal: life.signal });
          setTotp(false);
          replace(status, notice("ok", "Two-factor sign-in is off."));
        } catch (e2) {
          if (life.signal.aborted) return;
          checkSession(e2);
          replace(err, notice("error", explain(e2)));
          input.select();
        } finally {
          busy(btn, false);
        }
      });
      replace(totpSlot, form);
      return;
    }
    const start = h("button", { type: "button", class: "btn btn-primary", data: { testid: "totp-setup" } }, "Set up two-factor sign-in");
    const err = h("div");
    start.addEventListener("click", async () => {
      busy(start, "Preparing…");
      try {
        const resp = await client.beginTotpEnrollment({}, { signal: life.signal });
        drawEnroll(resp.secret, resp.qrPng);
      } catch (e) {
        if (life.signal.aborted) return;
        checkSession(e);
        replace(err, notice("error", explain(e)));
        busy(start, false);
      }
    });
    replace(totpSlot, h("div", { class: "narrow" },
      h("p", null, "Two-factor sign-in is off. Turn it on so that signing in also needs a code from an authenticator app on your phone."),
      err, start));
  }

  function drawEnroll(secret: string, png: Uint8Array): void {
    dropQR();
    const { input, row } = codeInput("totp-confirm-code");
    const confirm = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "totp-confirm" } }, "Turn on");
    const cancel = h("button", { type: "button", class: "btn btn-quiet" }, "Cancel");
    cancel.addEventListener("click", () => drawTotp());
    const err = h("div");
    let qr: HTMLElement;
    if (png.length > 0) {
      // Copy into a fresh ArrayBuffer-backed array for the Blob.
      qrURL = URL.createObjectURL(new Blob([new Uint8Array(png)], { type: "image/png" }));
      qr = h("img", { src: qrURL, class: "qr", width: 200, height: 200, alt: "QR code for your authenticator app", data: { testid: "totp-qr" } });
    } else {
      qr = h("p", { class: "muted" }, "No QR code: enter the key by hand.");
    }
    const form = h("form", { class: "enroll" },
      h("ol", { class: "steps" },
        h("li", null, "Scan this QR code with your authenticator app.", h("div", { class: "qr-wrap" }, qr)),
        h("li", null, "Or enter this key by hand: ", h("code", { class: "secret", data: { testid: "totp-secret" } }, groups(secret))),
        h("li", null, "Enter the 6-digit code the app shows.", row),
      ),
      err,
      h("div", { class: "form-actions" }, cancel, confirm),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!validCode(input.value)) {
        replace(err, notice("error", "Enter the 6-digit code from your authenticator app."));
        input.focus();
        return;
      }
      busy(confirm, "Checking…");
      try {
        await client.confirmTotpEnrollment({ code: input.value.replace(/\s+/g, "") }, { signal: life.signal });
        setTotp(true);
        replace(status, notice("ok", "Two-factor sign-in is on. From now on, signing in asks for a code."));
      } catch (e2) {
        if (life.signal.aborted) return;
        checkSession(e2);
        replace(err, notice("error", explain(e2)));
        input.select();
        busy(confirm, false);
      }
    });
    replace(totpSlot, form);
    input.focus();
  }

  // The technician may have changed since sign-in (another tab): ask again.
  client.whoAmI({}, { signal: life.signal }).then((r) => {
    const before = session.me.totpEnabled;
    if (r.technician) session.update(r.technician);
    session.expiresAt = tsDate(r.sessionExpiresAt) ?? session.expiresAt;
    drawWho();
    if (session.me.totpEnabled !== before) drawTotp();
  }, (e) => {
    if (!life.signal.aborted) checkSession(e);
  });

  drawWho();
  drawTotp();
  const el = h("div", { class: "page page-profile" },
    h("h1", null, "Profile"),
    status,
    card("Technician", who),
    card("Two-factor sign-in", totpSlot),
    card("Password", passwordForm({
      submitLabel: "Change password",
      signal: life.signal,
      done: (ended) => replace(status, notice("ok", `Password changed; ${ended} other sessions of yours ended.`)),
    }).el),
    signingCard(session.me.name, life.signal),
    h("p", { class: "muted" }, session.me.role === Role.ADMIN
      ? "Technicians, their roles and passwords: the Technicians page."
      : "To change your role, ask an admin."),
  );
  return {
    el,
    title: "Profile",
    dispose() {
      life.abort();
      dropQR();
    },
  };
}
