// The words around signing, kept apart from the key storage (signing.ts)
// so they can be unit-tested: the key's label, the admin's command, tier
// names, and which refusals are about signing.

import { TechnicianTier } from "./gen/deskside/v1/envelope_pb";

/** browserLabel names this browser for its key's label ("browser: Chrome on Linux"), from the user agent. */
export function browserLabel(ua: string): string {
  const browser = /Edg\//.test(ua) ? "Edge" : /OPR\//.test(ua) ? "Opera" : /Firefox\//.test(ua) ? "Firefox"
    : /HeadlessChrome|Chromium\//.test(ua) ? "Chromium" : /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "a browser";
  const os = /Windows/.test(ua) ? "Windows" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac OS X|Macintosh/.test(ua) ? "macOS"
    : /Android/.test(ua) ? "Android" : /CrOS/.test(ua) ? "ChromeOS" : /Linux/.test(ua) ? "Linux" : "";
  return `browser: ${browser}${os ? " on " + os : ""}`;
}

/** certifyCommand is what an admin runs to certify a registered key. */
export function certifyCommand(technician: string, fp: string): string {
  const name = /^[A-Za-z0-9._@-]+$/.test(technician) ? technician : `'${technician.replace(/'/g, `'\\''`)}'`;
  return `deskside technician certify ${name} --org-key ORG-KEY-FILE --role tier2 --fingerprint ${fp}`;
}

/** tierLabel says what a tier may do on the devices (proto/wire/envelope Allows). */
export function tierLabel(t: TechnicianTier): string {
  switch (t) {
    case TechnicianTier.TIER1:
      return "Tier 1: view-only remote sessions";
    case TechnicianTier.TIER2:
      return "Tier 2: commands, actions and remote control";
    case TechnicianTier.ADMIN:
      return "Admin: commands, actions and remote control";
  }
  return "no tier";
}

/**
 * needsEnvelope reports whether a device's refusal is about signing (no
 * envelope, or its certificate is unknown, expired or revoked), so the
 * page can point to the profile's Signing key card. The texts are the
 * agent's (proto/wire/envelope Verify).
 */
export function needsEnvelope(msg: string): boolean {
  return /signed envelope|technician certificate|certified technician key|organisation key this device pins|revoked by the organisation|not signed by the key certified/i.test(msg);
}
