// The admin's Technicians page (#/technicians): every technician with
// role, groups and state; add one (a generated password shown once, which
// they change at their first sign-in); change a role or groups; disable,
// enable, unlock, reset a password, delete. The relay audits each change
// and refuses what may not be done (yourself, the last admin); its
// sentence is shown as it is. A technician's email is where assignment and
// escalation mail goes (NotificationService.SetTechnicianEmail).

import { checkSession, client, explain, notifyClient, techClient } from "../api";
import { h, replace, uid } from "../dom";
import { fmtTime, roleLabel, tsDate } from "../format";
import { Role } from "../gen/deskside/v1/console_pb";
import type { TechnicianAccount } from "../gen/deskside/v1/technicians_pb";
import { card, notice, type Page, type Session } from "../page";

const roles: ReadonlyArray<[Role, string]> = [
  [Role.TIER1, "Tier 1: tickets, diagnostics, view-only sessions with consent"],
  [Role.TIER2, "Tier 2: + desktop control, actions and commands"],
  [Role.TIER3, "Tier 3: + commands on many devices, unattended access"],
  [Role.ADMIN, "Admin: + technicians, policy and settings"],
];

function roleSelect(testid: string, value: Role): HTMLSelectElement {
  return h("select", { data: { testid } },
    ...roles.map(([r]) => h("option", { value: String(r), selected: r === value }, roleLabel(Role[r]))));
}

function splitGroups(s: string): string[] {
  return s.split(",").map((g) => g.trim()).filter((g) => g !== "");
}

function stateText(t: TechnicianAccount): string {
  const s: string[] = [];
  const locked = tsDate(t.lockedUntil);
  if (t.disabled) s.push("Disabled");
  else if (locked && locked.getTime() > Date.now()) s.push(`Locked until ${fmtTime(locked)}`);
  else s.push("Active");
  if (t.mustChangePassword) s.push("must change password");
  return s.join(", ");
}

export function techniciansPage(session: Session): Page {
  const life = new AbortController();
  const signal = life.signal;
  const status = h("div", { "aria-live": "polite", data: { testid: "techs-status" } });
  const body = h("tbody");
  const table = h("table", { class: "grid", data: { testid: "techs-table" }, "aria-label": "Technicians" },
    h("thead", null, h("tr", null,
      h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Role"), h("th", { scope: "col" }, "Groups"),
      h("th", { scope: "col" }, "Email"), h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, "Two-factor"), h("th", { scope: "col" }, "Created"),
      h("th", { scope: "col" }, "Actions"))),
    body);

  const fail = (e: unknown) => {
    if (signal.aborted) return;
    checkSession(e);
    replace(status, notice("error", explain(e)));
  };
  /** act runs a change with btn disabled, shows its result and reloads the list. */
  const act = async (btn: HTMLButtonElement | HTMLSelectElement, fn: () => Promise<HTMLElement | string>) => {
    btn.disabled = true;
    try {
      const r = await fn();
      replace(status, typeof r === "string" ? notice("ok", r) : r);
      await load();
    } catch (e) {
      fail(e);
      await load().catch(() => {});
    } finally {
      btn.disabled = false;
    }
  };
  const passwordNotice = (name: string, pw: string, more: string) => notice("ok",
    h("p", null, `Password for ${name} (shown once; hand it over by another channel than the name):`),
    h("p", null, h("code", { class: "secret", data: { testid: "tech-password" } }, pw)),
    h("p", null, more));

  function row(t: TechnicianAccount): HTMLElement {
    const self = t.name === session.me.name;
    const role = roleSelect("tech-role", t.role);
    role.setAttribute("aria-label", `Role of ${t.name}`);
    role.addEventListener("change", () => {
      const r = Number(role.value) as Role;
      void act(role, async () => {
        await techClient.updateTechnician({ name: t.name, role: r }, { signal });
        return `${t.name} is now ${roleLabel(Role[r])}.`;
      });
    });
    const groups = h("input", { type: "text", value: t.groups.join(", "), placeholder: "all", class: "groups-input", "aria-label": `Groups of ${t.name}`, data: { testid: "tech-groups" } });
    const saveGroups = h("button", { type: "button", class: "btn btn-small", data: { testid: "tech-groups-save" } }, "Save");
    saveGroups.addEventListener("click", () => void act(saveGroups, async () => {
      const g = splitGroups(groups.value);
      await techClient.updateTechnician({ name: t.name, setGroups: true, groups: g }, { signal });
      return `${t.name} works in ${g.length ? g.join(", ") : "all groups"}.`;
    }));
    const email = h("input", { type: "text", inputmode: "email", value: t.email, placeholder: "none", class: "email-input", maxlength: 254, "aria-label": `Email of ${t.name}`, data: { testid: "tech-email" } });
    const saveEmail = h("button", { type: "button", class: "btn btn-small", data: { testid: "tech-email-save" } }, "Save");
    saveEmail.addEventListener("click", () => void act(saveEmail, async () => {
      const v = email.value.trim();
      await notifyClient.setTechnicianEmail({ technician: t.name, email: v }, { signal });
      return v ? `Assignment and escalation mail for ${t.name} goes to ${v}.` : `${t.name} has no email: they get no mail.`;
    }));
    const buttons: HTMLElement[] = [];
    const button = (label: string, testid: string, danger: boolean, fn: (b: HTMLButtonElement) => void) => {
      const b = h("button", { type: "button", class: danger ? "btn btn-small btn-danger" : "btn btn-small", data: { testid } }, label);
      b.addEventListener("click", () => fn(b));
      buttons.push(b);
    };
    const locked = tsDate(t.lockedUntil);
    if (locked && locked.getTime() > Date.now()) {
      button("Unlock", "tech-unlock", false, (b) => void act(b, async () => {
        await client.unlockTechnician({ name: t.name }, { signal });
        return `Unlocked ${t.name}: they can sign in now.`;
      }));
    }
    button("Reset password", "tech-reset", false, (b) => {
      if (!confirm(`Reset the password of ${t.name}? Their sessions end; they choose a new password at their next sign-in.`)) return;
      void act(b, async () => {
        const r = await client.resetTechnicianPassword({ name: t.name }, { signal });
        return passwordNotice(t.name, r.password, `The account is unlocked; ${r.sessionsEnded} of their sessions ended. Their authenticator stays as it is.`);
      });
    });
    if (!self) {
      if (t.disabled) {
        button("Enable", "tech-enable", false, (b) => void act(b, async () => {
          await techClient.setTechnicianDisabled({ name: t.name, disabled: false }, { signal });
          return `Enabled ${t.name}: they can sign in again.`;
        }));
      } else {
        button("Disable", "tech-disable", true, (b) => {
          if (!confirm(`Disable ${t.name}? Their sessions end at once.`)) return;
          void act(b, async () => {
            const r = await techClient.setTechnicianDisabled({ name: t.name, disabled: true }, { signal });
            return `Disabled ${t.name}; ${r.sessionsEnded} of their sessions ended.`;
          });
        });
      }
      button("Delete", "tech-delete", true, (b) => {
        if (!confirm(`Delete ${t.name}? The audit log keeps their name. To keep the account for later, disable it instead.`)) return;
        void act(b, async () => {
          const r = await techClient.deleteTechnician({ name: t.name }, { signal });
          return `Deleted ${t.name}; ${r.sessionsEnded} of their sessions ended. If the organisation certified a key of theirs, revoke it: deskside technician revoke ${t.name} --org-key FILE`;
        });
      });
    }
    return h("tr", { data: { testid: "tech-row", name: t.name } },
      h("th", { scope: "row" }, t.name, self ? h("span", { class: "muted" }, " (you)") : null),
      h("td", null, role),
      h("td", null, h("span", { class: "groups-edit" }, groups, saveGroups)),
      h("td", null, h("span", { class: "groups-edit" }, email, saveEmail)),
      h("td", { data: { testid: "tech-state" } }, stateText(t)),
      h("td", null, t.totpEnabled ? "On" : "Off"),
      h("td", null, fmtTime(tsDate(t.createdAt))),
      h("td", { class: "row-actions" }, ...buttons));
  }

  async function load(): Promise<void> {
    const r = await techClient.listTechnicians({}, { signal });
    replace(body, ...r.technicians.map(row));
  }

  // --- add ---------------------------------------------------------------------
  const nameID = uid("tech-add-name"), roleID = uid("tech-add-role"), groupsID = uid("tech-add-groups"), emailID = uid("tech-add-email");
  const name = h("input", { id: nameID, type: "text", autocomplete: "off", autocapitalize: "none", spellcheck: "false", maxlength: 64, required: true, data: { testid: "tech-add-name" } });
  const role = roleSelect("tech-add-role", Role.TIER1);
  role.id = roleID;
  const groups = h("input", { id: groupsID, type: "text", autocomplete: "off", placeholder: "all groups", data: { testid: "tech-add-groups" } });
  const email = h("input", { id: emailID, type: "email", autocomplete: "off", placeholder: "optional", data: { testid: "tech-add-email" } });
  const add = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "tech-add" } }, "Add technician");
  const addForm = h("form", { class: "narrow", novalidate: true },
    h("div", { class: "form-row" }, h("label", { for: nameID }, "Name"), name,
      h("p", { class: "hint" }, "Letters, digits and . _ - @; they sign in with it.")),
    h("div", { class: "form-row" }, h("label", { for: roleID }, "Role"), role),
    h("div", { class: "form-row" }, h("label", { for: groupsID }, "Teams / device groups (comma-separated)"), groups),
    h("div", { class: "form-row" }, h("label", { for: emailID }, "Email"), email,
      h("p", { class: "hint" }, "Where assignments and escalations to them are mailed, once email is set up in Settings.")),
    h("div", { class: "form-actions" }, add));
  addForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const n = name.value.trim();
    if (!n) {
      replace(status, notice("error", "Enter the new technician's name."));
      name.focus();
      return;
    }
    void act(add, async () => {
      const r = await techClient.createTechnician({ name: n, role: Number(role.value) as Role, groups: splitGroups(groups.value) }, { signal });
      // The account exists now: a refused email must not hide its password.
      let mailNote = "";
      const mail = email.value.trim();
      if (mail) {
        try {
          await notifyClient.setTechnicianEmail({ technician: n, email: mail }, { signal });
        } catch (err) {
          mailNote = ` Their email was not saved (${explain(err)}); set it in the table above.`;
        }
      }
      name.value = "";
      groups.value = "";
      email.value = "";
      return passwordNotice(n, r.password, "They choose their own password when they first sign in." + mailNote);
    });
  });

  load().catch(fail);
  const el = h("div", { class: "page page-technicians" },
    h("h1", null, "Technicians"),
    status,
    card("Technicians", h("div", { class: "table-wrap" }, table)),
    card("Add a technician", addForm),
    card("Tiers", h("dl", { class: "kv" }, ...roles.flatMap(([r, text]) => [h("dt", null, roleLabel(Role[r])), h("dd", null, text.replace(/^[^:]*: /, ""))]))),
  );
  return { el, title: "Technicians", dispose: () => life.abort() };
}
