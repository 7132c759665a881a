// The device page's remote-session controls: View and Control buttons that
// open the viewer (pages/session.ts), disabled while the device is offline
// or for a tier that may not (Control from tier 2, unattended from tier 3),
// and, for admins, the device's remote access policy (unattended access,
// how many sessions at once) through SetDevicePolicy.

import { checkSession, client, explain, isCanceled } from "../api";
import { h, replace, setText, uid } from "../dom";
import { Role, type Device } from "../gen/deskside/v1/console_pb";
import { DesktopPolicyMode } from "../gen/deskside/v1/desktop_pb";
import { notice, type Session } from "../page";

/** maxSessionsLimit is the relay's ceiling for max_sessions. */
export const maxSessionsLimit = 16;

export interface RemoteControls {
  /** buttons go in the page header. */
  buttons: HTMLElement;
  /** policy is the admin's policy form (undefined for other roles). */
  policy: HTMLElement | undefined;
  setDevice(d: Device): void;
}

/** remoteControls builds the remote-session buttons and policy form of device id. */
export function remoteControls(session: Session, id: string, life: AbortSignal): RemoteControls {
  const base = `#/devices/${encodeURIComponent(id)}/session`;
  const isAdmin = session.me.role === Role.ADMIN;
  const hintID = uid("remote-hint");
  const go = (control: boolean) => () => {
    location.hash = control ? `${base}?control=1` : base;
  };
  const viewBtn = h("button", { type: "button", class: "btn", disabled: true, "aria-describedby": hintID, data: { testid: "remote-view" }, on: { click: go(false) } }, "View");
  const controlBtn = h("button", { type: "button", class: "btn btn-primary", disabled: true, "aria-describedby": hintID, data: { testid: "remote-control" }, on: { click: go(true) } }, "Control");
  const hint = h("span", { id: hintID, class: "remote-hint", data: { testid: "remote-hint" } });
  // A disabled button gets no pointer events in some browsers: the wrapper carries the tooltip too.
  // Control takes tier 2: lower tiers do not see the button.
  const mayControl = session.me.role >= Role.TIER2;
  const wrap = h("span", { class: "remote-buttons" }, viewBtn, mayControl ? controlBtn : null);
  const buttons = h("div", { class: "remote", role: "group", "aria-label": "Remote session" },
    h("span", { class: "remote-label" }, "Remote session"), wrap, hint);

  // --- policy (admins) ---------------------------------------------------------
  let policy: HTMLElement | undefined;
  let dirty = false;
  let saving = false;
  const unattendedID = uid("policy-unattended");
  const maxID = uid("policy-max");
  const unattended = h("input", { id: unattendedID, type: "checkbox", data: { testid: "policy-unattended" } });
  const maxInput = h("input", { id: maxID, type: "number", class: "policy-max", min: "1", max: String(maxSessionsLimit), step: "1", inputmode: "numeric", value: "1", data: { testid: "policy-max-sessions" } });
  const saveBtn = h("button", { type: "submit", class: "btn btn-small", data: { testid: "policy-save" } }, "Save");
  const status = h("span", { class: "policy-status", role: "status", data: { testid: "policy-status" } });
  if (isAdmin) {
    const form = h("form", { class: "policy-form", novalidate: true },
      h("label", { class: "check", for: unattendedID }, unattended, "Allow unattended sessions"),
      h("label", { for: maxID, class: "policy-max-label" }, "Sessions at once"), maxInput,
      saveBtn, status,
    );
    policy = h("section", { class: "policy", "aria-labelledby": `${unattendedID}-title`, data: { testid: "remote-policy" } },
      h("h2", { id: `${unattendedID}-title`, class: "policy-title" }, "Remote access policy"),
      form,
      h("p", { class: "hint" }, "Attended (the default): each session asks the device's logged-in user first (Allow / Deny; no answer in 30 s denies); tier 1 may then view and tier 2 control. Unattended: technicians of tier 3 and up start sessions without asking. deskside devices policy also sets unattended with notice and a device group's mode. Every session and answer is audited."),
    );
    const edited = () => {
      dirty = true;
      setText(status, "");
    };
    unattended.addEventListener("change", edited);
    maxInput.addEventListener("input", edited);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const n = Number(maxInput.value);
      if (!Number.isInteger(n) || n < 1 || n > maxSessionsLimit) {
        replace(status, notice("error", `Sessions at once must be a whole number from 1 to ${maxSessionsLimit}.`));
        maxInput.focus();
        return;
      }
      saving = true;
      saveBtn.disabled = true;
      setText(status, "Saving…");
      try {
        await client.setDevicePolicy({ deviceId: id, unattendedAllowed: unattended.checked, maxSessions: n }, { signal: life });
        dirty = false;
        setText(status, "Saved.");
      } catch (err) {
        if (isCanceled(err) || life.aborted) return;
        checkSession(err);
        replace(status, notice("error", "Not saved: " + explain(err)));
      } finally {
        saving = false;
        saveBtn.disabled = false;
      }
    });
  }

  // Nothing shows until the device is known.
  buttons.hidden = true;
  if (policy) policy.hidden = true;

  function setDevice(d: Device): void {
    buttons.hidden = false;
    if (policy) policy.hidden = false;
    const online = d.online && !d.revoked;
    // Unattended sessions (with or without notice) take tier 3; attended
    // ones ask the user.
    const tier3 = session.me.role >= Role.TIER3;
    const mode = d.desktopMode || (d.unattendedAllowed ? DesktopPolicyMode.UNATTENDED : DesktopPolicyMode.ATTENDED);
    const unattendedMode = mode === DesktopPolicyMode.UNATTENDED || mode === DesktopPolicyMode.UNATTENDED_NOTICE;
    let why = "";
    if (unattendedMode && !tier3) why = "Unattended sessions (without the user's consent) take Tier 3 or higher.";
    else if (d.revoked) why = "The device is revoked.";
    else if (!online) why = "The device is offline: remote sessions need its agent connected.";
    for (const b of [viewBtn, controlBtn]) {
      b.disabled = why !== "";
      b.title = why;
    }
    wrap.title = why;
    let note = why;
    if (!why && !unattendedMode) {
      note = "Attended: the device's user is asked to allow each session (no answer in 30 s denies).";
    } else if (!why && mode === DesktopPolicyMode.UNATTENDED_NOTICE) {
      note = "Unattended with notice: the device's user is told when a session starts.";
    }
    setText(hint, note);
    hint.hidden = note === "";
    if (isAdmin && !dirty && !saving) {
      unattended.checked = d.unattendedAllowed;
      maxInput.value = String(Math.max(1, d.maxSessions));
    }
  }

  return { buttons, policy, setDevice };
}
