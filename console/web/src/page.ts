// What every page shares: its shape, the signed-in session, and small
// building blocks (headings, notices, key/value lists).

import { h, type Child } from "./dom";
import { needsEnvelope } from "./signwords";
import type { Technician } from "./gen/deskside/v1/console_pb";

/** Page is one screen: its element, its title, and what to stop when it is left. */
export interface Page {
  el: HTMLElement;
  title: string;
  dispose(): void;
}

/** Session is the signed-in technician. */
export interface Session {
  me: Technician;
  expiresAt: Date | undefined;
  /** update replaces the technician (after a TOTP change) and redraws the top bar. */
  update(me: Technician): void;
}

/** notice is a message box: kind "error" is announced to screen readers at once. */
export function notice(kind: "error" | "info" | "ok" | "warn", ...children: Child[]): HTMLDivElement {
  return h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, ...children);
}

/** kvList is a definition list of label/value pairs, skipping empty values. */
export function kvList(pairs: ReadonlyArray<[string, Child]>, attrs: { class?: string } = {}): HTMLDListElement {
  const dl = h("dl", { class: "kv " + (attrs.class ?? "") });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "" || v === false) continue;
    dl.append(h("dt", null, k), h("dd", null, typeof v === "string" ? h("span", { class: "wrap" }, v) : v));
  }
  return dl;
}

/** section is a titled card. */
export function card(title: string, ...children: Child[]): HTMLElement {
  return h("section", { class: "card" }, h("h2", null, title), ...children);
}

/**
 * signingHint points to the profile's Signing key card when a device
 * refused a request because it was not signed (or not signed by a valid
 * certificate); null for any other message.
 */
export function signingHint(msg: string): HTMLElement | null {
  if (!needsEnvelope(msg)) return null;
  return h("p", { class: "signing-hint", data: { testid: "signing-hint" } },
    "This device runs only requests signed with a certified technician key. ",
    h("a", { href: "#/profile" }, "See the Signing key card on your profile"), " for what to do in this browser.");
}

/** code is inline monospace text (commands, ids, secrets). */
export function code(s: string): HTMLElement {
  return h("code", null, s);
}
