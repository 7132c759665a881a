import assert from "node:assert/strict";
import { test } from "node:test";
import { sdpFingerprint } from "../src/desktop";
import { TechnicianTier } from "../src/gen/deskside/v1/envelope_pb";
import { browserLabel, certifyCommand, needsEnvelope, tierLabel } from "../src/signwords";

test("sdpFingerprint writes the SHA-256 fingerprint as SDP does", () => {
  const v = Array.from({ length: 32 }, (_, i) => (i * 7 + 10).toString(16).padStart(2, "0")).join(":");
  assert.equal(sdpFingerprint([{ algorithm: "sha-1", value: "aa:bb" }, { algorithm: "sha-256", value: v }]), "sha-256 " + v.toUpperCase());
  assert.match(sdpFingerprint([{ algorithm: "SHA-256", value: v }])!, /^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  // Nothing usable: no fingerprint rather than a wrong one.
  assert.equal(sdpFingerprint([]), undefined);
  assert.equal(sdpFingerprint([{ algorithm: "sha-256", value: "ab:cd" }]), undefined);
  assert.equal(sdpFingerprint([{ algorithm: "sha-512", value: v }]), undefined);
});

test("browserLabel names the browser and its system", () => {
  assert.equal(browserLabel("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"), "browser: Chrome on Linux");
  assert.equal(browserLabel("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36"), "browser: Chromium on Linux");
  assert.equal(browserLabel("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0"), "browser: Edge on Windows");
  assert.equal(browserLabel("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:133.0) Gecko/20100101 Firefox/133.0"), "browser: Firefox on macOS");
  assert.equal(browserLabel("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"), "browser: Safari on iOS");
  assert.equal(browserLabel("curl/8"), "browser: a browser");
});

test("certifyCommand quotes names the shell would split", () => {
  assert.equal(certifyCommand("alice", "FP"), "deskside technician certify alice --org-key ORG-KEY-FILE --role tier2 --fingerprint FP");
  assert.equal(certifyCommand("o'neil x", "FP"), `deskside technician certify 'o'\\''neil x' --org-key ORG-KEY-FILE --role tier2 --fingerprint FP`);
});

test("tierLabel says what each tier may do", () => {
  assert.match(tierLabel(TechnicianTier.TIER1), /view-only/);
  assert.match(tierLabel(TechnicianTier.TIER2), /commands/);
  assert.equal(tierLabel(TechnicianTier.UNSPECIFIED), "no tier");
});

test("needsEnvelope knows the agent's signing refusals and no others", () => {
  for (const m of [
    "refused by the device: this device pins an organisation key and runs commands only with a technician's signed envelope; sign in with a certified technician key (deskside technician status)",
    `refused by the device: technician certificate of "alice" expired at 2026-01-01T00:00:00Z; an admin renews it (deskside technician certify)`,
    `technician "alice" is revoked by the organisation`,
    `technician certificate of "alice" is not signed by the organisation key this device pins (abc)`,
  ]) assert.ok(needsEnvelope(m), m);
  for (const m of [
    "refused by the device: this device's local policy turns off remote commands and actions (deskside-agent policy on the device)",
    "device d1 is offline",
    "permission denied: tier1 may not run commands",
  ]) assert.ok(!needsEnvelope(m), m);
});
