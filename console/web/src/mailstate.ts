// Whether the relay sends email at all (an SMTP server is configured),
// for the pages that would otherwise let a technician believe a requester
// is mailed. Every technician may ask (TicketService.GetTicketSettings
// says it); the SMTP settings themselves are the admin's Settings page.

import { ticketClient } from "./api";
import { h, replace } from "./dom";
import { notice } from "./page";

let cached: { at: number; on: Promise<boolean | undefined> } | undefined;

/** mailConfigured is true when the relay mails; undefined when it could not be asked. Answers are kept 30 s. */
export function mailConfigured(): Promise<boolean | undefined> {
  const now = Date.now();
  if (!cached || now - cached.at > 30_000) {
    cached = {
      at: now,
      on: ticketClient.getTicketSettings({}).then((r) => r.mailConfigured, () => {
        cached = undefined; // ask again next time
        return undefined;
      }),
    };
  }
  return cached.on;
}

/** forgetMailState drops the kept answer (after the admin changed SMTP). */
export function forgetMailState(): void {
  cached = undefined;
}

/**
 * mailOffNotice is an element that says, when SMTP is off, that the
 * requester will not be mailed; it stays empty while mail works. admin
 * links the sentence to the Settings page.
 */
export function mailOffNotice(admin: boolean): HTMLElement {
  const slot = h("div", { hidden: true, data: { testid: "mail-off-slot" } });
  void mailConfigured().then((on) => {
    if (on !== false) return;
    slot.hidden = false;
    replace(slot, notice("warn", h("span", { data: { testid: "mail-off" } }, "Email is off — the requester will not be mailed. ",
      admin ? h("a", { href: "#/settings" }, "Set it up in Settings") : "An admin can set it up in Settings", ".")));
  });
  return slot;
}
