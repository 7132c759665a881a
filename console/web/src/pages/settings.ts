// The admin's Settings page (#/settings): the SMTP server ticket mail goes
// through (the password is write-only), a test mail, the outgoing webhooks
// with their delivery log, the outgoing mail waiting or given up (with its
// last error and a Retry), the mail templates with a preview, and the SLA
// targets per priority. The relay refuses everyone but admins and audits
// each change; its sentences are shown as they are.

import { checkSession, Code, ConnectError, explain, isCanceled, notifyClient, ticketClient } from "../api";
import { h, replace, uid } from "../dom";
import { fmtTime, tsDate } from "../format";
import type { OutboxItem, Webhook, WebhookDelivery } from "../gen/deskside/v1/notify_pb";
import { TicketPriority, type TicketSlaTarget } from "../gen/deskside/v1/tickets_pb";
import { forgetMailState } from "../mailstate";
import { card, code, notice, type Page } from "../page";
import { fillSample, fmtDuration, joinTemplate, parseDuration, placeholders, splitTemplate } from "../settingsfmt";
import { priorityLabel } from "../ticketfmt";

/** field is a labelled input in a form row. */
function field(label: string, testid: string, attrs: Record<string, unknown> = {}, hint?: string): { input: HTMLInputElement; el: HTMLElement } {
  const id = uid(testid);
  const input = h("input", { id, type: "text", autocomplete: "off", spellcheck: "false", data: { testid }, ...attrs });
  return { input, el: h("div", { class: "form-row" }, h("label", { for: id }, label), input, hint ? h("p", { class: "hint" }, hint) : null) };
}

const templateLabels: Record<string, string> = {
  created: "Ticket created (to the requester)",
  reply: "Public reply (to the requester)",
  resolved: "Ticket resolved (to the requester)",
  assigned: "Ticket assigned (to the technician)",
  escalated: "Ticket escalated (to the tier's technicians)",
};

export function settingsPage(): Page {
  const life = new AbortController();
  const signal = life.signal;
  const pageStatus = h("div", { "aria-live": "polite" });
  const fail = (slot: HTMLElement, e: unknown) => {
    if (isCanceled(e) || signal.aborted) return;
    checkSession(e);
    replace(slot, notice("error", explain(e)));
  };
  /** act runs fn with btn disabled and shows its result (or error) in slot. */
  const act = async (btn: HTMLButtonElement, slot: HTMLElement, fn: () => Promise<HTMLElement | string | void>) => {
    btn.disabled = true;
    replace(slot);
    try {
      const r = await fn();
      if (r) replace(slot, typeof r === "string" ? notice("ok", r) : r);
    } catch (e) {
      fail(slot, e);
    } finally {
      btn.disabled = false;
    }
  };

  // --- Email (SMTP) ---------------------------------------------------------
  const smtpState = h("div", { data: { testid: "smtp-state" } });
  const smtpStatus = h("div", { "aria-live": "polite", data: { testid: "smtp-status" } });
  const host = field("Server", "smtp-host", { placeholder: "smtp.example.com", maxlength: 253 });
  const port = field("Port", "smtp-port", { type: "number", min: 1, max: 65535, value: "587" });
  const tlsID = uid("smtp-tls");
  const tls = h("select", { id: tlsID, data: { testid: "smtp-tls" } },
    h("option", { value: "starttls" }, "STARTTLS (port 587)"),
    h("option", { value: "tls" }, "Implicit TLS (port 465)"));
  const user = field("User name", "smtp-user", { autocomplete: "off", maxlength: 254 });
  const pass = field("Password", "smtp-password", { type: "password", autocomplete: "new-password", maxlength: 1024 },
    "Write-only: never shown again.");
  const from = field("From address", "smtp-from", { inputmode: "email", placeholder: "helpdesk@example.com", maxlength: 254 });
  const replyTo = field("Reply-to address (optional)", "smtp-reply-to", { inputmode: "email", maxlength: 254 },
    "Where requesters' answers go; empty: the from address.");
  let hasPassword = false;
  let storedUser = "";
  tls.addEventListener("change", () => {
    // Follow the usual port while it is still the other mode's default.
    if (tls.value === "tls" && port.input.value === "587") port.input.value = "465";
    if (tls.value === "starttls" && port.input.value === "465") port.input.value = "587";
  });
  const drawPasswordHint = () => {
    pass.input.placeholder = hasPassword && user.input.value.trim() === storedUser ? "stored; empty keeps it" : "";
  };
  user.input.addEventListener("input", drawPasswordHint);

  async function loadSmtp(): Promise<void> {
    const r = await notifyClient.getSmtp({}, { signal });
    const c = r.smtp;
    hasPassword = !!c?.password;
    storedUser = c?.username ?? "";
    host.input.value = c?.host ?? "";
    port.input.value = c?.port ? String(c.port) : "587";
    tls.value = c?.tls || "starttls";
    user.input.value = storedUser;
    pass.input.value = "";
    from.input.value = c?.from ?? "";
    replyTo.input.value = c?.replyTo ?? "";
    drawPasswordHint();
    off.hidden = !r.configured;
    replace(smtpState, r.configured
      ? notice("ok", h("span", { data: { testid: "smtp-on" } }, `Email is on: ticket mail goes through ${c?.host}:${c?.port} from ${c?.from}.`))
      : notice("warn", h("span", { data: { testid: "smtp-off" } }, "Email is off: no mail is sent to requesters or technicians."), " Enter a server below to turn it on."),
    r.inboundListen ? h("p", { class: "hint" }, "Answers by email reach this relay at ", code(r.inboundListen), ".") : null);
  }

  const save = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "smtp-save" } }, "Save");
  const off = h("button", { type: "button", class: "btn btn-danger", hidden: true, data: { testid: "smtp-turn-off" } }, "Turn email off");
  const smtpForm = h("form", { novalidate: true },
    host.el,
    h("div", { class: "settings-pair" }, port.el, h("div", { class: "form-row" }, h("label", { for: tlsID }, "Encryption"), tls)),
    h("div", { class: "settings-pair" }, user.el, pass.el),
    from.el, replyTo.el,
    h("div", { class: "form-actions" }, off, save));
  smtpForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const hostV = host.input.value.trim();
    if (!hostV) {
      replace(smtpStatus, notice("error", "Enter the SMTP server's name, or use Turn email off."));
      host.input.focus();
      return;
    }
    const portV = Number(port.input.value);
    if (!Number.isInteger(portV) || portV < 1 || portV > 65535) {
      replace(smtpStatus, notice("error", "Enter a port from 1 to 65535 (587 for STARTTLS, 465 for TLS)."));
      port.input.focus();
      return;
    }
    void act(save, smtpStatus, async () => {
      await notifyClient.setSmtp({ smtp: {
        host: hostV, port: portV, tls: tls.value, username: user.input.value.trim(), password: pass.input.value,
        from: from.input.value.trim(), replyTo: replyTo.input.value.trim(),
      } }, { signal });
      forgetMailState();
      await loadSmtp();
      return "Saved. Send a test mail to check that the server takes it.";
    });
  });
  off.addEventListener("click", () => {
    if (!confirm("Turn email off? Requesters and technicians get no mail until a server is set again.")) return;
    void act(off, smtpStatus, async () => {
      await notifyClient.setSmtp({ smtp: {} }, { signal });
      forgetMailState();
      await loadSmtp();
      return "Email is off.";
    });
  });

  const testTo = field("Send a test mail to", "smtp-test-to", { inputmode: "email", placeholder: "you@example.com", maxlength: 254 });
  const testBtn = h("button", { type: "submit", class: "btn", data: { testid: "smtp-test" } }, "Send test mail");
  const testStatus = h("div", { "aria-live": "polite", data: { testid: "smtp-test-status" } });
  const testForm = h("form", { novalidate: true }, testTo.el, h("div", { class: "form-actions" }, testBtn));
  testForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const to = testTo.input.value.trim();
    if (!to) {
      replace(testStatus, notice("error", "Enter the address to send the test mail to."));
      testTo.input.focus();
      return;
    }
    if (!/^[^\s@<>]+@[^\s@<>]+$/.test(to)) {
      replace(testStatus, notice("error", `"${to}" is not an email address: write one such as you@example.com.`));
      testTo.input.focus();
      return;
    }
    void act(testBtn, testStatus, async () => {
      replace(testStatus, h("p", { class: "muted" }, `Sending to ${to}…`));
      try {
        await notifyClient.testSmtp({ to }, { signal });
      } catch (e) {
        // Unavailable is the mail server's refusal, not the relay's.
        const ce = ConnectError.from(e);
        if (ce.code !== Code.Unavailable) throw e;
        return notice("error", `The mail server did not take the test mail: ${ce.rawMessage}. Check the server, port, encryption, user name and password above, save, and try again.`);
      }
      return notice("ok", h("span", { data: { testid: "smtp-test-ok" } }, `The server took the test mail for ${to}. If it does not arrive, check the spam folder and the server's log.`));
    });
  });

  // --- Outgoing mail (the outbox) ------------------------------------------
  const mailqStatus = h("div", { "aria-live": "polite", data: { testid: "mailq-status" } });
  const mailqBody = h("tbody");
  const mailqTable = h("table", { class: "grid compact", "aria-label": "Outgoing mail", data: { testid: "mailq-table" } },
    h("thead", null, h("tr", null, ...["Created", "To", "Ticket", "Template", "State", "Attempts", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
    mailqBody);
  const mailqEmpty = h("p", { class: "muted", data: { testid: "mailq-empty" } }, "Nothing is waiting: no mail is pending or failed.");

  function mailqRow(it: OutboxItem): HTMLElement {
    const failed = it.state === "failed";
    const state = failed
      ? h("span", { class: "settings-fail" }, "Failed")
      : h("span", { class: "muted" }, it.nextAttempt ? `Pending · next try ${fmtTime(tsDate(it.nextAttempt))}` : "Pending");
    let action: HTMLElement | string = "–";
    if (failed) {
      const retry = h("button", { type: "button", class: "btn btn-small", data: { testid: "mailq-retry" } }, "Retry");
      retry.addEventListener("click", () => void act(retry, mailqStatus, async () => {
        await notifyClient.retryOutbox({ id: it.id }, { signal });
        await loadMailq();
        return `Mail to ${it.recipient} queued again; it is sent now.`;
      }));
      action = retry;
    }
    return h("tr", { data: { testid: "mailq-row", id: String(it.id), state: it.state } },
      h("td", { class: "nowrap" }, fmtTime(tsDate(it.created))),
      h("td", null, h("span", { class: "wrap" }, it.recipient)),
      h("td", null, it.ticket ? h("a", { href: "#/tickets/" + encodeURIComponent(it.ticket), class: "tk-code" }, it.ticket) : "–"),
      h("td", null, it.template || it.event),
      h("td", null, state, it.lastError ? h("div", { class: "hint wrap", data: { testid: "mailq-error" } }, it.lastError) : null),
      h("td", { class: "num" }, String(it.attempts)),
      h("td", { class: "row-actions" }, action));
  }

  async function loadMailq(): Promise<void> {
    const r = await notifyClient.listOutbox({ kind: "mail" }, { signal });
    mailqTable.hidden = r.items.length === 0;
    mailqEmpty.hidden = r.items.length > 0;
    replace(mailqBody, ...r.items.map(mailqRow));
  }
  const mailqRefresh = h("button", { type: "button", class: "btn btn-small", data: { testid: "mailq-refresh" } }, "Refresh");
  mailqRefresh.addEventListener("click", () => void act(mailqRefresh, mailqStatus, loadMailq));

  // --- Webhooks -------------------------------------------------------------
  const hookStatus = h("div", { "aria-live": "polite", data: { testid: "hook-status" } });
  const hookBody = h("tbody");
  const hookTable = h("table", { class: "grid", "aria-label": "Webhooks", data: { testid: "hook-table" } },
    h("thead", null, h("tr", null, h("th", { scope: "col" }, "URL"), h("th", { scope: "col" }, "Last delivery"), h("th", { scope: "col" }, "Actions"))),
    hookBody);
  const hookEmpty = h("p", { class: "muted", data: { testid: "hook-empty" } }, "No webhooks: ticket events are not posted anywhere.");
  const delivBody = h("tbody");
  const delivFilter = h("select", { "aria-label": "Show deliveries of", data: { testid: "hook-filter" } });
  const delivTable = h("table", { class: "grid compact", "aria-label": "Webhook deliveries", data: { testid: "hook-deliveries" } },
    h("thead", null, h("tr", null, ...["Time", "Webhook", "Event", "Ticket", "Result", "HTTP", "Attempts"].map((c) => h("th", { scope: "col" }, c)))),
    delivBody);
  let hooks: Webhook[] = [];
  let deliveries: WebhookDelivery[] = [];

  const resultText = (d: WebhookDelivery) => d.ok ? "Delivered" : d.done ? "Failed" : d.attempts > 0 ? "Retrying" : "Pending";
  const resultClass = (d: WebhookDelivery) => d.ok ? "settings-ok" : d.done ? "settings-fail" : "muted";

  function drawDeliveries(): void {
    const only = delivFilter.value;
    const urlOf = new Map(hooks.map((w) => [w.id, w.url]));
    const shown = deliveries.filter((d) => !only || d.webhookId === only);
    replace(delivBody, shown.length ? shown.map((d) => h("tr", { data: { testid: "hook-delivery", webhook: d.webhookId, ok: String(d.ok) } },
      h("td", { class: "nowrap" }, fmtTime(tsDate(d.time))),
      h("td", null, h("span", { class: "clip", title: urlOf.get(d.webhookId) ?? d.webhookId }, urlOf.get(d.webhookId) ?? `${d.webhookId} (removed)`)),
      h("td", null, d.event),
      h("td", null, d.ticket ? h("a", { href: "#/tickets/" + encodeURIComponent(d.ticket), class: "tk-code" }, d.ticket) : "–"),
      h("td", null, h("span", { class: resultClass(d) }, resultText(d)), d.error ? h("div", { class: "hint wrap" }, d.error) : null),
      h("td", { class: "num" }, d.httpStatus ? String(d.httpStatus) : "–"),
      h("td", { class: "num" }, String(d.attempts)),
    )) : [h("tr", null, h("td", { colspan: 7, class: "muted" }, "No deliveries yet: they appear here when a ticket changes."))]);
  }

  function hookRow(w: Webhook): HTMLElement {
    const last = deliveries.find((d) => d.webhookId === w.id);
    const remove = h("button", { type: "button", class: "btn btn-small btn-danger", data: { testid: "hook-remove" } }, "Remove");
    remove.addEventListener("click", () => {
      if (!confirm(`Remove the webhook ${w.url}? Ticket events stop going there.`)) return;
      void act(remove, hookStatus, async () => {
        await notifyClient.removeWebhook({ id: w.id }, { signal });
        await loadHooks();
        return `Removed the webhook ${w.url}.`;
      });
    });
    return h("tr", { data: { testid: "hook-row", id: w.id, url: w.url } },
      h("td", null, h("span", { class: "wrap" }, w.url)),
      h("td", null, last ? [h("span", { class: resultClass(last) }, resultText(last)), h("span", { class: "muted" }, ` · ${last.event} · ${fmtTime(tsDate(last.time))}`)] : h("span", { class: "muted" }, "none yet")),
      h("td", { class: "row-actions" }, remove));
  }

  async function loadHooks(): Promise<void> {
    const [l, d] = await Promise.all([notifyClient.listWebhooks({}, { signal }), notifyClient.listWebhookDeliveries({}, { signal })]);
    hooks = l.webhooks;
    deliveries = d.deliveries;
    hookTable.hidden = hooks.length === 0;
    hookEmpty.hidden = hooks.length > 0;
    replace(hookBody, ...hooks.map(hookRow));
    const keep = delivFilter.value;
    replace(delivFilter, h("option", { value: "" }, "All webhooks"), ...hooks.map((w) => h("option", { value: w.id }, w.url)));
    delivFilter.value = hooks.some((w) => w.id === keep) ? keep : "";
    drawDeliveries();
  }
  delivFilter.addEventListener("change", drawDeliveries);
  const refresh = h("button", { type: "button", class: "btn btn-small", data: { testid: "hook-refresh" } }, "Refresh");
  refresh.addEventListener("click", () => void act(refresh, hookStatus, loadHooks));

  const hookURL = field("URL", "hook-url", { inputmode: "url", placeholder: "https://psa.example.com/hooks/deskside", maxlength: 2048 });
  const hookSecret = field("Signing secret (optional)", "hook-secret", { type: "password", autocomplete: "new-password", maxlength: 256 },
    "At least 16 characters. Empty: the relay makes one and shows it once. Either way it is never shown again.");
  const hookAdd = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "hook-add" } }, "Add webhook");
  const hookForm = h("form", { novalidate: true }, hookURL.el, hookSecret.el, h("div", { class: "form-actions" }, hookAdd));
  hookForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const u = hookURL.input.value.trim();
    if (!u) {
      replace(hookStatus, notice("error", "Enter the URL ticket events are posted to."));
      hookURL.input.focus();
      return;
    }
    void act(hookAdd, hookStatus, async () => {
      const r = await notifyClient.addWebhook({ url: u, secret: hookSecret.input.value }, { signal });
      hookURL.input.value = "";
      hookSecret.input.value = "";
      await loadHooks();
      if (!r.secret) return `Added the webhook ${r.webhook?.url ?? u}; it signs with the secret you gave.`;
      return notice("ok",
        h("p", null, `Added the webhook ${r.webhook?.url ?? u}. Its signing secret (shown once; give it to the receiver to check the Deskside-Signature header):`),
        h("p", null, h("code", { class: "secret", data: { testid: "hook-secret-once" } }, r.secret)));
    });
  });

  // --- Templates --------------------------------------------------------------
  const tplStatus = h("div", { "aria-live": "polite", data: { testid: "tpl-status" } });
  const tplNameID = uid("tpl-name");
  const tplName = h("select", { id: tplNameID, data: { testid: "tpl-name" } });
  const tplState = h("span", { class: "muted", data: { testid: "tpl-state" } });
  const tplSubject = field("Subject", "tpl-subject", { maxlength: 300 });
  const tplBodyID = uid("tpl-body");
  const tplBody = h("textarea", { id: tplBodyID, class: "settings-template", rows: 12, spellcheck: "true", data: { testid: "tpl-body" } });
  const preview = h("div", { class: "settings-preview", data: { testid: "tpl-preview" } });
  let lastFocus: HTMLInputElement | HTMLTextAreaElement = tplBody;
  tplSubject.input.addEventListener("focus", () => (lastFocus = tplSubject.input));
  tplBody.addEventListener("focus", () => (lastFocus = tplBody));
  const drawPreview = () => replace(preview,
    h("div", { class: "settings-preview-subject" }, h("span", { class: "muted" }, "Subject: "), h("strong", { data: { testid: "tpl-preview-subject" } }, fillSample(tplSubject.input.value))),
    h("pre", { class: "settings-preview-body", data: { testid: "tpl-preview-body" } }, fillSample(tplBody.value)));
  tplSubject.input.addEventListener("input", drawPreview);
  tplBody.addEventListener("input", drawPreview);
  const chips = h("div", { class: "settings-chips" }, ...placeholders.map(([k, what, sample]) => {
    const b = h("button", { type: "button", class: "btn btn-small btn-quiet", title: `${what}, e.g. ${sample}: insert it`, data: { testid: "tpl-placeholder" } }, code(`{{.${k}}}`));
    b.addEventListener("click", () => {
      const el = lastFocus;
      const ins = `{{.${k}}}`;
      const a = el.selectionStart ?? el.value.length, z = el.selectionEnd ?? a;
      el.setRangeText(ins, a, z, "end");
      el.focus();
      drawPreview();
    });
    return b;
  }));

  async function loadTemplate(name: string): Promise<void> {
    const r = await notifyClient.getTemplate({ name }, { signal });
    if (tplName.options.length === 0) {
      replace(tplName, ...r.names.map((n) => h("option", { value: n }, templateLabels[n] ?? n)));
    }
    if (!name) return loadTemplate(r.names[0] ?? "");
    tplName.value = name;
    const { subject, body } = splitTemplate(r.text);
    tplSubject.input.value = subject;
    tplBody.value = body;
    replace(tplState, r.isDefault ? "the built-in text" : "edited");
    tplReset.hidden = r.isDefault;
    drawPreview();
  }
  tplName.addEventListener("change", () => {
    replace(tplStatus);
    loadTemplate(tplName.value).catch((e) => fail(tplStatus, e));
  });
  const tplSave = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "tpl-save" } }, "Save template");
  const tplReset = h("button", { type: "button", class: "btn", hidden: true, data: { testid: "tpl-reset" } }, "Restore the built-in text");
  const tplForm = h("form", { novalidate: true },
    h("div", { class: "form-row" }, h("label", { for: tplNameID }, "Template"), h("div", { class: "settings-row" }, tplName, tplState)),
    h("div", { class: "kb-split" },
      h("div", null, tplSubject.el, h("div", { class: "form-row" }, h("label", { for: tplBodyID }, "Body"), tplBody)),
      h("div", null, h("div", { class: "form-row" }, h("span", { class: "settings-label" }, "Preview with sample values"), preview))),
    h("div", { class: "form-row" }, h("span", { class: "settings-label" }, "Placeholders (click to insert)"), chips,
      h("p", { class: "hint" }, placeholders.map(([k, what]) => `${k}: ${what}`).join(" · "), ". Templates are Go text/template: the relay checks one when you save.")),
    h("div", { class: "form-actions" }, tplReset, tplSave));
  tplForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = tplName.value;
    if (!tplSubject.input.value.trim()) {
      replace(tplStatus, notice("error", "Enter a subject: every mail needs one."));
      tplSubject.input.focus();
      return;
    }
    void act(tplSave, tplStatus, async () => {
      await notifyClient.setTemplate({ name, text: joinTemplate(tplSubject.input.value, tplBody.value) }, { signal });
      await loadTemplate(name);
      return `Saved the ${templateLabels[name]?.replace(/ \(.*/, "").toLowerCase() ?? name} template.`;
    });
  });
  tplReset.addEventListener("click", () => {
    const name = tplName.value;
    if (!confirm("Throw away the edit and restore the built-in text of this template?")) return;
    void act(tplReset, tplStatus, async () => {
      await notifyClient.setTemplate({ name, text: "" }, { signal });
      await loadTemplate(name);
      return "Restored the built-in text.";
    });
  });

  // --- SLA targets ------------------------------------------------------------
  const slaStatus = h("div", { "aria-live": "polite", data: { testid: "sla-status" } });
  const slaBody = h("tbody");
  const slaInputs = new Map<TicketPriority, { first: HTMLInputElement; res: HTMLInputElement }>();
  const durInput = (testid: string, label: string) => h("input", {
    type: "text", class: "settings-dur", autocomplete: "off", spellcheck: "false", "aria-label": label, placeholder: "e.g. 4h", data: { testid },
  });
  function drawSla(targets: TicketSlaTarget[]): void {
    slaInputs.clear();
    const rows = [...targets].sort((a, b) => b.priority - a.priority).map((t) => {
      const name = priorityLabel(t.priority);
      const first = durInput("sla-first", `First response target for ${name}`);
      const res = durInput("sla-resolution", `Resolution target for ${name}`);
      first.value = fmtDuration(Number(t.firstResponse?.seconds ?? 0n));
      res.value = fmtDuration(Number(t.resolution?.seconds ?? 0n));
      slaInputs.set(t.priority, { first, res });
      return h("tr", { data: { testid: "sla-row", priority: name.toLowerCase() } }, h("th", { scope: "row" }, name), h("td", null, first), h("td", null, res));
    });
    replace(slaBody, ...rows);
  }
  async function loadSla(): Promise<void> {
    const r = await ticketClient.getTicketSettings({}, { signal });
    drawSla(r.settings?.sla ?? []);
  }
  const slaSave = h("button", { type: "submit", class: "btn btn-primary", data: { testid: "sla-save" } }, "Save targets");
  const slaForm = h("form", { novalidate: true },
    h("div", { class: "table-wrap settings-sla-wrap" }, h("table", { class: "grid settings-sla", "aria-label": "SLA targets", data: { testid: "sla-table" } },
      h("thead", null, h("tr", null, h("th", { scope: "col" }, "Priority"), h("th", { scope: "col" }, "First response within"), h("th", { scope: "col" }, "Resolved within"))),
      slaBody)),
    h("p", { class: "hint" }, "Days, hours and minutes: 30m, 4h, 1d 4h. Each ticket shows the time left against these; changes apply to every open ticket."),
    h("div", { class: "form-actions" }, slaSave));
  slaForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const sla: { priority: TicketPriority; firstResponse: { seconds: bigint }; resolution: { seconds: bigint } }[] = [];
    for (const [p, { first, res }] of slaInputs) {
      const f = parseDuration(first.value), r = parseDuration(res.value);
      const bad = f === undefined ? first : r === undefined ? res : undefined;
      if (bad) {
        replace(slaStatus, notice("error", `${priorityLabel(p)}: write a time like 30m, 4h or 1d 4h.`));
        bad.focus();
        return;
      }
      sla.push({ priority: p, firstResponse: { seconds: BigInt(f!) }, resolution: { seconds: BigInt(r!) } });
    }
    void act(slaSave, slaStatus, async () => {
      const r = await ticketClient.setTicketSettings({ settings: { sla } }, { signal });
      drawSla(r.settings?.sla ?? []);
      return "Saved the SLA targets.";
    });
  });

  const el = h("div", { class: "page page-settings" },
    h("h1", null, "Settings"),
    pageStatus,
    h("section", { class: "card", data: { testid: "settings-smtp" } }, h("h2", null, "Email (SMTP)"), smtpState, smtpStatus,
      h("div", { class: "settings-split" },
        smtpForm,
        h("div", null, h("h3", null, "Send a test mail"),
          h("p", { class: "muted" }, "One message, now, through the saved server; a refusal shows the server's answer."),
          testStatus, testForm))),
    h("section", { class: "card", data: { testid: "settings-mailq" } },
      h("div", { class: "card-head" }, h("h2", null, "Outgoing mail"), mailqRefresh),
      h("p", { class: "muted" }, "Mail waiting to be sent or given up. A mail the server refuses for good (such as 550 no such user) fails at once; others are retried with backoff. Fix the cause, then Retry."),
      mailqStatus, mailqEmpty, h("div", { class: "table-wrap scroll-box" }, mailqTable)),
    h("section", { class: "card", data: { testid: "settings-webhooks" } }, h("h2", null, "Webhooks"),
      h("p", { class: "muted" }, "Ticket events are posted as JSON, signed with HMAC-SHA256 (the Deskside-Signature header), and retried with backoff."),
      hookStatus,
      h("div", { class: "settings-split" },
        h("div", null, h("h3", null, "Receivers"), hookEmpty, h("div", { class: "table-wrap" }, hookTable)),
        h("div", null, h("h3", null, "Add a webhook"), hookForm)),
      h("div", { class: "card-head section-title" }, h("h3", null, "Delivery log"), h("div", { class: "settings-row" }, delivFilter, refresh)),
      h("div", { class: "table-wrap scroll-box" }, delivTable)),
    card("Email templates", tplStatus, tplForm),
    card("SLA targets", slaStatus, slaForm),
  );

  // A refusal (not an admin) is said once, at the top, without the cards;
  // any other failure in the card it belongs to.
  let refused = false;
  const load = (p: Promise<void>, slot: HTMLElement) => p.catch((e) => {
    if (ConnectError.from(e).code === Code.PermissionDenied) {
      if (refused) return;
      refused = true;
      fail(pageStatus, e);
      for (const c of el.querySelectorAll<HTMLElement>(".card")) c.hidden = true;
      return;
    }
    fail(slot, e);
  });
  void load(loadSmtp(), smtpStatus);
  void load(loadHooks(), hookStatus);
  void load(loadMailq(), mailqStatus);
  void load(loadTemplate(""), tplStatus);
  void load(loadSla(), slaStatus);
  return { el, title: "Settings", dispose: () => life.abort() };
}
